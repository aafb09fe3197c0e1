import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// The node cache through the daemon on real SeaweedFS, proven by the daemon's own counts of
/// the S3 requests it sent (GetObject requests, bytes received, 304s).
final class NodeCacheOnS3Tests: XCTestCase, @unchecked Sendable {
    var scratch = ""
    var bucketLocator = ""
    var daemons: [DaemonProcess] = []

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "nodecache-s3-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        bucketLocator = "aws:us-east-1:jobstore-cache-\(UUID().uuidString.prefix(8).lowercased())"
    }

    override func tearDown() async throws {
        if let daemon = daemons.first(where: { $0.process.isRunning }), let client = try? daemon.connect() {
            _ = try? await client.destroy(StoreRequest(locator: bucketLocator))
            client.connection.close()
        }
        for daemon in daemons { daemon.stop() }
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func start(_ arguments: [String] = []) throws -> DaemonProcess {
        let daemon = try DaemonProcess.withS3(extraArguments: ["--part-size", "5MiB", "--cache-min-free", "0"] + arguments)
        daemons.append(daemon)
        return daemon
    }

    /// Clients of two daemons (two nodes) on the same S3, the store initialized through the first.
    func twoNodes() async throws -> (JobStoreClient, JobStoreClient) {
        let a = try start().connect()
        let b = try start().connect()
        _ = try await a.initialize(StoreRequest(locator: bucketLocator))
        return (a, b)
    }

    func stats(_ client: JobStoreClient) async throws -> StatsResponse {
        try await client.stats(Empty())
    }

    func getObject(_ s: StatsResponse) -> BackendRequestStats {
        s.backendRequests.first { $0.operation == "GetObject" } ?? BackendRequestStats(operation: "GetObject")
    }

    /// Writes `bytes` as a new file from a local file (WriteFile with a descriptor).
    func writeFile(_ client: JobStoreClient, _ bytes: [UInt8]) async throws -> String {
        let path = scratch + "/upload-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let fd = open(path, O_RDONLY)
        defer { close(fd); unlink(path) }
        return try await client.writeFile(WriteFileRequest(locator: bucketLocator, basename: "f"), fd: fd).fileId
    }

    /// Reads a file into a local file through a passed descriptor (ReadFile).
    func readFile(_ client: JobStoreClient, _ id: String) async throws -> [UInt8] {
        let path = scratch + "/download-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(fd); unlink(path) }
        _ = try await client.readFile(ReadFileRequest(locator: bucketLocator, fileId: id), fd: fd)
        return [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    }

    func testSixteenConcurrentReadersOfOneFileCauseOneDownload() async throws {
        let writer = try start(["--no-cache"])
        let writerClient = try writer.connect()
        defer { writerClient.connection.close() }
        _ = try await writerClient.initialize(StoreRequest(locator: bucketLocator))
        let size = 64 << 20
        let bytes = pattern(size, seed: 3)
        let id = try await writeFile(writerClient, bytes)

        let reader = try start()
        let clients = try (0..<16).map { _ in try reader.connect() }
        defer { for c in clients { c.connection.close() } }
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for client in clients {
                group.addTask { try await self.readFile(client, id) == bytes }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        XCTAssertEqual(results, Array(repeating: true, count: 16))
        let s = try await stats(clients[0])
        let get = getObject(s)
        // One download: a first ranged GET of 1 MiB, then 5 MiB parts. Every reader that
        // joined it also sent one conditional GET (answered 304, no body): each read checks
        // for updates made elsewhere after it began.
        let partGets = UInt64(((size - (1 << 20)) + (5 << 20) - 1) / (5 << 20))
        XCTAssertEqual(get.bytesReceived, UInt64(size), "the file's bytes came from S3 once")
        XCTAssertEqual(get.requests - get.notModified, 1 + partGets, "GetObject requests that carried bytes: one download")
        XCTAssertEqual(get.notModified, 15)
        XCTAssertEqual(s.cache?.misses, 1)
        XCTAssertEqual(s.cache?.joined, 15)
        XCTAssertEqual(s.cache?.bytesFromCache, UInt64(16 * size))
    }

    func testReadsAfterAWriteOnThisNodeDownloadNothing() async throws {
        let daemon = try start()
        let client = try daemon.connect()
        defer { client.connection.close() }
        _ = try await client.initialize(StoreRequest(locator: bucketLocator))
        let small = pattern(100_000, seed: 1)
        let large = pattern(7 << 20, seed: 2)  // multipart with 5 MiB parts
        let smallID = try await writeFile(client, small)
        let largeID = try await client.upload(WriteFileRequest(locator: bucketLocator, basename: "s"), large, chunk: 1 << 20).fileId
        let readSmall = try await readFile(client, smallID)
        let readLarge = try await readFile(client, largeID)
        let streamed = try await client.download(bucketLocator, largeID)
        XCTAssertEqual(readSmall, small)
        XCTAssertEqual(readLarge, large)
        XCTAssertEqual(streamed, large)
        let linked = try await client.readFile(ReadFileRequest(locator: bucketLocator, fileId: largeID, linkOk: true))
        XCTAssertFalse(linked.linkPath.isEmpty, "the cache entry's path, to link")
        XCTAssertEqual(FileManager.default.contents(atPath: linked.linkPath).map { [UInt8]($0) }, large)
        XCTAssertEqual(linked.info?.size, UInt64(large.count))

        let s = try await stats(client)
        let get = getObject(s)
        XCTAssertEqual(get.bytesReceived, 0, "no GET carried a body")
        XCTAssertEqual(get.requests, 4)
        XCTAssertEqual(get.notModified, 4, "each read revalidated with one 304")
        XCTAssertEqual(s.cache?.writtenThrough, 2)
        XCTAssertEqual(s.cache?.misses, 0)
    }

    func testWithoutACacheALinkReadWithoutADescriptorIsRefused() async throws {
        let daemon = try start(["--no-cache"])
        let client = try daemon.connect()
        defer { client.connection.close() }
        _ = try await client.initialize(StoreRequest(locator: bucketLocator))
        let id = try await writeFile(client, [1, 2, 3])
        await assertFails(.invalidArgument) {
            try await client.readFile(ReadFileRequest(locator: self.bucketLocator, fileId: id, linkOk: true))
        }
        let s = try await stats(client)
        XCTAssertEqual(s.cache?.enabled, false)
    }

    func testAnUpdateOrDeleteByAnotherNodeIsSeen() async throws {
        let (a, b) = try await twoNodes()
        defer { a.connection.close(); b.connection.close() }
        let first = pattern(2 << 20, seed: 4)
        let id = try await writeFile(a, first)
        let readByB = try await readFile(b, id)
        XCTAssertEqual(readByB, first)
        let second = pattern(6 << 20, seed: 5)
        _ = try await a.updateFileStream(UpdateFileRequest(locator: bucketLocator, fileId: id)) { try await $0.write(second) }
        let readAgain = try await readFile(b, id)
        XCTAssertEqual(readAgain, second, "node B sees node A's update")
        let streamed = try await b.download(bucketLocator, id)
        XCTAssertEqual(streamed, second)
        _ = try await a.deleteFile(FileRequest(locator: bucketLocator, fileId: id))
        await assertFails(.notFound, kind: .noSuchFile) { try await self.readFile(b, id) }
        let s = try await stats(b)
        XCTAssertEqual(s.cache?.entries, 0, "the deleted file's entry is gone")
        XCTAssertEqual(s.cache?.misses, 2)
    }

    /// A job this node wrote or read is revalidated on load (a 304 carries no body), and what
    /// another node writes or deletes in between is seen.
    func testJobLoadsRevalidateAndSeeOtherNodesWrites() async throws {
        let (a, b) = try await twoNodes()
        defer { a.connection.close(); b.connection.close() }
        let first = pattern(40_000, seed: 7)
        _ = try await a.createJob(JobBody(locator: bucketLocator, jobId: "j", body: first))
        let before = getObject(try await stats(a))
        for _ in 0..<3 {
            let loaded = try await a.loadJob(JobRequest(locator: bucketLocator, jobId: "j")).body
            XCTAssertEqual(loaded, first)
        }
        let after = getObject(try await stats(a))
        XCTAssertEqual(after.requests - before.requests, 3, "each load asks the store")
        XCTAssertEqual(after.notModified - before.notModified, 3, "and is answered 304")
        XCTAssertEqual(after.bytesReceived - before.bytesReceived, 0, "no body downloaded")

        let second = pattern(30_000, seed: 8)
        _ = try await b.updateJob(JobBody(locator: bucketLocator, jobId: "j", body: second))
        let seen = try await a.loadJob(JobRequest(locator: bucketLocator, jobId: "j")).body
        XCTAssertEqual(seen, second, "node A sees node B's update")
        let again = try await a.loadJob(JobRequest(locator: bucketLocator, jobId: "j")).body
        XCTAssertEqual(again, second)
        let kept = getObject(try await stats(a))
        XCTAssertEqual(kept.notModified - before.notModified, 4, "the new body is kept in turn")

        _ = try await b.deleteJob(JobRequest(locator: bucketLocator, jobId: "j"))
        await assertFails(.notFound, kind: .noSuchJob) {
            _ = try await a.loadJob(JobRequest(locator: bucketLocator, jobId: "j"))
        }
        // Recreated by B: A's entry went with the NoSuchJob, so A reads the job afresh.
        _ = try await b.createJob(JobBody(locator: bucketLocator, jobId: "j", body: first))
        let recreated = try await a.loadJob(JobRequest(locator: bucketLocator, jobId: "j")).body
        XCTAssertEqual(recreated, first)
    }

    func testAfterAKillFinishedEntriesAreServedAndTheInterruptedOneIsNot() async throws {
        let writer = try start(["--no-cache"])
        let w = try writer.connect()
        defer { w.connection.close() }
        _ = try await w.initialize(StoreRequest(locator: bucketLocator))
        let files = (0..<3).map { pattern(3 << 20, seed: UInt8(10 + $0)) }
        var ids: [String] = []
        for f in files { ids.append(try await writeFile(w, f)) }
        let big = pattern(96 << 20, seed: 20)
        let bigID = try await writeFile(w, big)

        let cacheDir = scratch + "/cache"
        let first = try start(["--cache-dir", cacheDir, "--part-concurrency", "1"])
        let c1 = try first.connect()
        for id in ids { _ = try await readFile(c1, id) }
        // Start downloading the big file, and kill the daemon once the fill has begun.
        let download = Task { try? await self.readFile(c1, bigID) }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let partial = ((try? FileManager.default.contentsOfDirectory(atPath: cacheDir + "/tmp")) ?? []).contains { name in
                ((try? FileManager.default.attributesOfItem(atPath: cacheDir + "/tmp/" + name)[.size] as? Int) ?? 0) > 0
            }
            if partial { break }
            usleep(2000)
        }
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        _ = await download.value
        c1.connection.close()

        let second = try start(["--cache-dir", cacheDir])
        let c2 = try second.connect()
        defer { c2.connection.close() }
        let before = try await stats(c2)
        XCTAssertEqual(before.cache?.entries, 3, "the finished entries survived, the interrupted one is not one")
        XCTAssertEqual(before.cache?.sizeBytes, UInt64(3 * (3 << 20)))
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: cacheDir + "/tmp")) ?? ["?"], [], "no fill debris")
        for (id, bytes) in zip(ids, files) {
            let back = try await readFile(c2, id)
            XCTAssertEqual(back, bytes)
        }
        let served = try await stats(c2)
        XCTAssertEqual(getObject(served).bytesReceived, 0, "finished entries served from the cache")
        let bigBack = try await readFile(c2, bigID)
        XCTAssertTrue(bigBack == big)
        let after = try await stats(c2)
        XCTAssertEqual(after.cache?.misses, 1, "the interrupted file is downloaded anew")
        XCTAssertEqual(after.cache?.corrupt, 0)
        XCTAssertEqual(after.cache?.sizeBytes, UInt64(3 * (3 << 20) + (96 << 20)))
    }

    func testTheCapHoldsWhileEightClientsReadThreeTimesItAndALeasedEntrySurvives() async throws {
        let writer = try start(["--no-cache"])
        let w = try writer.connect()
        defer { w.connection.close() }
        _ = try await w.initialize(StoreRequest(locator: bucketLocator))
        let fileSize = 4 << 20
        let cap = 24 << 20
        let files = (0..<18).map { pattern(fileSize, seed: UInt8(30 + $0)) }  // 72 MiB: 3 × the cap
        var ids: [String] = []
        for f in files { ids.append(try await writeFile(w, f)) }

        let cacheDir = scratch + "/cache"
        let daemon = try start(["--cache-dir", cacheDir, "--cache-size", "\(cap)"])
        let clients = try (0..<8).map { _ in try daemon.connect() }
        defer { for c in clients { c.connection.close() } }
        let leased = try await clients[0].readFile(ReadFileRequest(locator: bucketLocator, fileId: ids[0], linkOk: true))
        XCTAssertFalse(leased.linkPath.isEmpty)

        let stop = StopSignal()
        let worst = Highest()
        let monitor = Thread {
            while !stop.isSet {
                worst.note(Self.dataBytes(in: cacheDir))
                usleep(1000)
            }
        }
        monitor.start()
        let fileIDs = ids
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for (n, client) in clients.enumerated() {
                group.addTask {
                    var ok = true
                    for i in 0..<fileIDs.count {
                        let index = (i + n * 5) % fileIDs.count
                        let back = try await self.readFile(client, fileIDs[index])
                        ok = ok && back == files[index]
                    }
                    return ok
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        stop.set()
        while !monitor.isFinished { usleep(1000) }
        XCTAssertEqual(results, Array(repeating: true, count: 8))
        XCTAssertLessThanOrEqual(worst.value, UInt64(cap), "bytes in the cache never exceeded the cap")
        XCTAssertGreaterThan(worst.value, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: leased.linkPath).map { [UInt8]($0) }, files[0],
                       "the leased entry was not evicted")
        let s = try await stats(clients[0])
        XCTAssertGreaterThan(s.cache?.evictions ?? 0, 0)
        XCTAssertLessThanOrEqual(s.cache?.sizeBytes ?? .max, UInt64(cap))
        XCTAssertEqual(s.cache?.reservedBytes, 0)
    }

    /// Bytes of data files (entries and fills in progress) under a cache directory, each file
    /// once by inode (a fill renamed from tmp/ to entries/ between the listings is seen twice).
    static func dataBytes(in directory: String) -> UInt64 {
        var total: UInt64 = 0
        var counted = Set<UInt64>()
        for sub in ["tmp", "entries"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(sub)")) ?? [] where !name.hasSuffix(".manifest") {
                var st = stat()
                if stat("\(directory)/\(sub)/\(name)", &st) == 0, counted.insert(UInt64(st.st_ino)).inserted { total += UInt64(st.st_size) }
            }
        }
        return total
    }
}

final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

final class Highest: @unchecked Sendable {
    private let lock = NSLock()
    private var highest: UInt64 = 0
    func note(_ v: UInt64) { lock.lock(); highest = max(highest, v); lock.unlock() }
    var value: UInt64 { lock.lock(); defer { lock.unlock() }; return highest }
}
