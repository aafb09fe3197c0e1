import Foundation
import JobStoreClient
import JobStoreWire
import JobStoreTestSupport
import ObjectStore
import XCTest

/// 10,000 mixed job-store operations through a daemon whose S3 traffic crosses the fault proxy
/// (faults on 10% of requests): every operation succeeds with the right bytes or fails with a
/// retryable status, and afterwards a separate plain S3 client (boto3, straight to SeaweedFS)
/// finds no torn or wrong object.
final class FaultInjectionTests: XCTestCase, @unchecked Sendable {
    static let operations = Int(ProcessInfo.processInfo.environment["JOBSTORE_FAULT_OPERATIONS"] ?? "") ?? 10_000
    static let clients = 16
    static let faultRate = 0.10

    func testMixedOperationsUnderInjectedFaultsLoseNothing() async throws {
        try await runMixedOperations(Self.operations, overTLS: false)
    }

    /// The same over https: the daemon talks TLS to a terminator (stunnel4, a CA made per run) in
    /// front of the fault proxy, so resets, truncations and stalls reach it as broken TLS streams.
    func testMixedOperationsUnderInjectedFaultsOverTLSLoseNothing() async throws {
        try await runMixedOperations(Self.operations / 5, overTLS: true)
    }

    func runMixedOperations(_ count: Int, overTLS: Bool) async throws {
        let env = ProcessInfo.processInfo.environment
        let upstream = try XCTUnwrap(env["JOBSTORE_TEST_S3_ENDPOINT"], "run tools/dev-s3 first")
        let proxy = try FaultProxy(upstream: upstream, rate: Self.faultRate, seed: 20261125, stallSeconds: 2)
        defer { proxy.stop() }
        let rig = overTLS ? try TLSRig(upstream: proxy.endpoint) : nil
        defer { rig?.stop() }
        let tls = rig.map { ["--ca-bundle", $0.ca] } ?? []
        let daemon = try DaemonProcess.withS3(endpoint: rig?.endpoint() ?? proxy.endpoint,
                                              extraArguments: ["--part-size", "5MiB", "--s3-stall-seconds", "2"] + tls)
        defer { daemon.stop() }
        let name = "jobstore-faults-\(UUID().uuidString.prefix(8).lowercased())"
        let locator = "aws:us-east-1:\(name)"
        let setup = try daemon.connect()
        _ = try await setup.initialize(StoreRequest(locator: locator))
        var keepBucket = false
        defer { if !keepBucket { _ = try? DaemonProcess.testS3Store().destroyBucket(name + "--toil") } }

        let started = Date()
        let perClient = count / Self.clients
        let outcomes = try await withThrowingTaskGroup(of: ClientOutcome.self) { group in
            for index in 0..<Self.clients {
                group.addTask {
                    let client = try daemon.connect()
                    defer { client.connection.close() }
                    var worker = FaultWorker(client: client, locator: locator, index: index, seed: UInt64(index + 1) * 7919)
                    for _ in 0..<perClient { await worker.step() }
                    return worker.outcome
                }
            }
            return try await group.reduce(into: [ClientOutcome]()) { $0.append($1) }
        }
        let elapsed = Date().timeIntervalSince(started)
        let faults = try proxy.counts().filter { $0.key != "outages" }
        let failures = outcomes.reduce(into: [String: Int]()) { all, o in all.merge(o.failures) { $0 + $1 } }
        let violations = outcomes.flatMap(\.violations)
        let operations = outcomes.map(\.operations).reduce(0, +)
        print("fault injection\(overTLS ? " over TLS" : ""): \(operations) operations in \(String(format: "%.1f", elapsed)) s, " +
              "S3 requests \(faults["requests"] ?? 0), faults \(faults.filter { $0.key != "requests" }.sorted { $0.key < $1.key }), " +
              "failed operations (retryable) \(failures)")
        XCTAssertEqual(violations, [], "every failure is a retryable status; every read returns the right bytes")
        XCTAssertEqual(operations, perClient * Self.clients)
        let injected = faults.filter { $0.key != "requests" }.values.reduce(0, +)
        XCTAssertGreaterThan(injected, Int(Double(faults["requests"] ?? 0) * Self.faultRate * 0.7), "faults were injected")
        for kind in ["slowdown", "error500", "lost", "reset", "truncate", "stall", "corrupt"] {
            XCTAssertGreaterThan(faults[kind] ?? 0, 0, "\(kind) faults were injected")
        }

        // Every object, straight from SeaweedFS with boto3.
        let (status, report) = try FaultProxy.verifyBucket(upstream: upstream, bucket: name + "--toil", outcomes: outcomes,
                                                           manifestDirectory: daemon.directory)
        XCTAssertEqual(status, 0, report)
        keepBucket = status != 0 && env["JOBSTORE_FAULT_KEEP"] != nil  // to look into
        setup.connection.close()
    }
}

/// What one client saw.
struct ClientOutcome: Sendable {
    var operations = 0
    var failures: [String: Int] = [:]
    var violations: [String] = []
    /// Seconds each operation took.
    var latencies: [Double] = []
    /// Object key → the contents it may hold (SHA-256 hex, or "absent").
    var expected: [String: Set<String>] = [:]
}

/// One client's random walk over jobs, files, shared files and logs of its own.
struct FaultWorker {
    let client: JobStoreClient
    let locator: String
    let index: Int
    var rng: SplitMix64
    var outcome = ClientOutcome()
    var jobs: [String] = []
    var files: [String] = []
    static let retryable: Set<StatusCode> = [.unavailable, .aborted, .deadlineExceeded, .resourceExhausted]

    init(client: JobStoreClient, locator: String, index: Int, seed: UInt64) {
        self.client = client
        self.locator = locator
        self.index = index
        rng = SplitMix64(seed: seed)
    }

    static func digest(_ bytes: [UInt8]) -> String {
        let d = SHA256Digest()
        d.update(bytes)
        return d.finalizeHex()
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = rng.next()
            for _ in 0..<8 where i < count {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }

    mutating func failed(_ op: String, _ error: Error) {
        outcome.failures[op, default: 0] += 1
        if let e = error as? JobStoreError, Self.retryable.contains(e.code) { return }
        outcome.violations.append("\(op): not a retryable failure: \(error)")
    }

    /// A read's bytes (nil: not found) against what the key may hold; a certain answer
    /// collapses the set.
    mutating func check(_ op: String, _ key: String, _ bytes: [UInt8]?) {
        let d = bytes.map(Self.digest) ?? "absent"
        guard let allowed = outcome.expected[key], allowed.contains(d) else {
            outcome.violations.append("\(op) \(key): read bytes \(d), expected one of \(outcome.expected[key] ?? [])")
            return
        }
        outcome.expected[key] = [d]
    }

    /// Files of 6 MiB (multipart) among the writes, one in this many; 0: none.
    var largeFileEvery: UInt64 = 60

    mutating func step() async {
        outcome.operations += 1
        let started = DispatchTime.now().uptimeNanoseconds
        defer { outcome.latencies.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9) }
        let r = Int(rng.next() % 100)
        switch r {
        case 0..<15: await createJob()
        case 15..<25: jobs.isEmpty ? await createJob() : await updateJob()
        case 25..<45: jobs.isEmpty ? await createJob() : await loadJob()
        case 45..<48: jobs.isEmpty ? await createJob() : await deleteJob()
        case 48..<63: await writeFile()
        case 63..<83: files.isEmpty ? await writeFile() : await readFile()
        case 83..<88: files.isEmpty ? await writeFile() : await updateFile()
        case 88..<91: files.isEmpty ? await writeFile() : await deleteFile()
        case 91..<96: await writeLog()
        default: await sharedFile()
        }
    }

    mutating func pick(_ list: [String]) -> String { list[Int(rng.next() % UInt64(list.count))] }

    mutating func createJob() async {
        let id = UUID().uuidString.lowercased()
        let body = bytes(100 + Int(rng.next() % 3000))
        let key = "jobs/\(id)"
        do {
            _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: body))
            outcome.expected[key] = [Self.digest(body)]
        } catch {
            failed("CreateJob", error)
            outcome.expected[key] = ["absent", Self.digest(body)]
        }
        jobs.append(id)
    }

    mutating func updateJob() async {
        let id = pick(jobs)
        let key = "jobs/\(id)"
        let body = bytes(100 + Int(rng.next() % 3000))
        do {
            _ = try await client.updateJob(JobBody(locator: locator, jobId: id, body: body))
            outcome.expected[key] = [Self.digest(body)]
        } catch {
            failed("UpdateJob", error)
            outcome.expected[key, default: []].insert(Self.digest(body))
        }
    }

    mutating func loadJob() async {
        let id = pick(jobs)
        let key = "jobs/\(id)"
        do {
            let body = try await client.loadJob(JobRequest(locator: locator, jobId: id)).body
            check("LoadJob", key, body)
        } catch let e as JobStoreError where e.kind == .noSuchJob {
            check("LoadJob", key, nil)
        } catch {
            failed("LoadJob", error)
        }
    }

    mutating func deleteJob() async {
        let id = pick(jobs)
        do {
            _ = try await client.deleteJob(JobRequest(locator: locator, jobId: id))
            outcome.expected["jobs/\(id)"] = ["absent"]
            jobs.removeAll { $0 == id }
        } catch {
            failed("DeleteJob", error)
            outcome.expected["jobs/\(id)", default: []].insert("absent")
        }
    }

    mutating func writeFile() async {
        let large = largeFileEvery > 0 && rng.next() % largeFileEvery == 0
        let body = bytes(large ? 6 << 20 : 1 + Int(rng.next() % 200_000))
        do {
            let info = try await client.upload(WriteFileRequest(locator: locator, basename: "f"), body, chunk: 256 << 10)
            outcome.expected["files-flat/\(info.fileId)/f"] = [Self.digest(body)]
            files.append(info.fileId)
        } catch {
            failed("WriteFileStream", error)
        }
    }

    mutating func readFile() async {
        let id = pick(files)
        let key = "files-flat/\(id)/f"
        do {
            let body = try await client.download(locator, id)
            check("ReadFileStream", key, body)
        } catch let e as JobStoreError where e.kind == .noSuchFile {
            check("ReadFileStream", key, nil)
        } catch {
            failed("ReadFileStream", error)
        }
    }

    mutating func updateFile() async {
        let id = pick(files)
        let key = "files-flat/\(id)/f"
        let body = bytes(1 + Int(rng.next() % 200_000))
        do {
            _ = try await client.updateFileStream(UpdateFileRequest(locator: locator, fileId: id)) { try await $0.write(body) }
            outcome.expected[key] = [Self.digest(body)]
        } catch let e as JobStoreError where e.kind == .noSuchFile {
            outcome.expected[key] = ["absent"]
        } catch {
            failed("UpdateFileStream", error)
            outcome.expected[key, default: []].insert(Self.digest(body))
        }
    }

    mutating func deleteFile() async {
        let id = pick(files)
        do {
            _ = try await client.deleteFile(FileRequest(locator: locator, fileId: id))
            outcome.expected["files-flat/\(id)/f"] = ["absent"]
            files.removeAll { $0 == id }
        } catch {
            failed("DeleteFile", error)
            outcome.expected["files-flat/\(id)/f", default: []].insert("absent")
        }
    }

    mutating func writeLog() async {
        do {
            _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: bytes(200)))
        } catch {
            failed("WriteLogs", error)
        }
    }

    mutating func sharedFile() async {
        let name = "shared-\(index)"
        if rng.next() % 2 == 0 {
            let body = bytes(1 + Int(rng.next() % 5000))
            do {
                try await client.writeShared(locator, name, body)
                outcome.expected[name] = [Self.digest(body)]
            } catch {
                failed("WriteSharedFileStream", error)
                outcome.expected[name, default: ["absent"]].insert(Self.digest(body))
            }
        } else if outcome.expected[name] != nil {
            do {
                check("ReadSharedFileStream", name, try await client.readShared(locator, name))
            } catch let e as JobStoreError where e.code == .notFound {
                check("ReadSharedFileStream", name, nil)
            } catch {
                failed("ReadSharedFileStream", error)
            }
        }
    }
}

