import Foundation
import NodeCache
import ObjectStore
import XCTest

/// Reads: fills, revalidation, single-flight, errors, bypass, trust, copies.
final class NodeCacheReadTests: NodeCacheTestCase {
    func testAMissFillsAndTheNextReadRevalidatesWithoutDownloading() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        let bytes = randomBytes(300_000)
        remote.set("a", bytes)
        let first = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertEqual(try read(first), bytes)
        XCTAssertEqual(first.info.metadata["m"], "1")
        first.release()
        let second = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertEqual(try read(second), bytes)
        second.release()
        XCTAssertEqual(remote.downloads, 1)
        XCTAssertEqual(remote.conditional, [nil, remote.etag("a")])
        let s = cache.statistics
        XCTAssertEqual([s.misses, s.hits, s.revalidations, s.entries], [1, 1, 1, 1])
        XCTAssertEqual(s.sizeBytes, 300_000)
        XCTAssertEqual(s.bytesFromStore, 300_000)
        XCTAssertEqual(s.bytesFromCache, 600_000)
    }

    func testAnUpdatedObjectIsDownloadedAgainAndReplacesTheEntry() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        remote.set("a", randomBytes(1000))
        try cache.open(key("a"), fetch: remote.fetch("a"))?.release()
        let newer = randomBytes(2000)
        remote.set("a", newer)
        let file = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertEqual(try read(file), newer)
        file.release()
        XCTAssertEqual(remote.downloads, 2)
        XCTAssertEqual(cache.statistics.entries, 1)
        XCTAssertEqual(cache.statistics.sizeBytes, 2000)
        XCTAssertEqual(bytesOnDisk(), 2000, "the old version's file is gone")
    }

    func testConcurrentReadersOfAnUncachedObjectShareOneDownload() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        let bytes = randomBytes(1 << 20)
        remote.set("big", bytes)
        remote.delay = 200_000
        let results = ResultBox()
        runConcurrently(16) { [self] _ in
            do {
                let file = try XCTUnwrap(try cache.open(key("big"), fetch: remote.fetch("big")))
                let got = try read(file)
                file.release()
                results.add(got == bytes)
            } catch {
                results.add(false)
            }
        }
        XCTAssertEqual(results.values, Array(repeating: true, count: 16))
        XCTAssertEqual(remote.downloads, 1, "one download for 16 readers")
        XCTAssertEqual(cache.statistics.joined, 15)
        // Each reader that joined checked the entry with its own conditional request (a 304).
        XCTAssertEqual(remote.fetches, 16)
        XCTAssertEqual(cache.statistics.revalidations, 15)
    }

    func testAReaderJoiningADownloadStillSeesAnUpdateMadeBeforeItBegan() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        remote.set("a", randomBytes(1000))
        remote.delay = 300_000
        let first = Thread { [self] in
            let file = try? cache.open(key("a"), fetch: remote.fetch("a"))
            XCTAssertEqual(file?.info.size, 1000)
            file?.release()
        }
        first.start()
        usleep(100_000)
        // The object changes (on another node) while the first download is out; then a second
        // read begins and joins that download.
        let newer = randomBytes(2000)
        remote.set("a", newer)
        remote.delay = 0
        let second = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertEqual(try read(second), newer)
        second.release()
        while !first.isFinished { usleep(1000) }
    }

    func testWaitersGetTheFillsErrorAndTheNextReadTriesAgain() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        remote.set("a", randomBytes(100))
        remote.delay = 200_000
        remote.failure = ObjectStoreError.unavailable("S3 is down")
        let errors = ResultBox()
        runConcurrently(4) { [self] _ in
            do {
                _ = try cache.open(key("a"), fetch: remote.fetch("a"))
                errors.add(false)
            } catch ObjectStoreError.unavailable {
                errors.add(true)
            } catch {
                errors.add(false)
            }
        }
        XCTAssertEqual(errors.values, [true, true, true, true])
        XCTAssertEqual(remote.fetches, 1)
        remote.failure = nil
        remote.delay = 0
        XCTAssertNotNil(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertEqual(remote.fetches, 2)
        XCTAssertEqual(bytesOnDisk(), 100)
    }

    func testAMissingObjectThrowsAndLeavesNoEntry() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        XCTAssertThrowsError(try cache.open(key("nope"), fetch: remote.fetch("nope"))) { error in
            XCTAssertEqual(error as? ObjectStoreError, .noSuchKey("nope"))
        }
        XCTAssertEqual(cache.statistics.entries, 0)
        XCTAssertEqual(bytesOnDisk(), 0)
    }

    func testAnObjectLargerThanTheCacheGoesPastIt() throws {
        let cache = try makeCache(capacity: 1000)
        let remote = FakeRemote()
        remote.set("big", randomBytes(5000))
        XCTAssertNil(try cache.open(key("big"), fetch: remote.fetch("big")))
        XCTAssertEqual(cache.statistics.bypassed, 1)
        XCTAssertEqual(cache.statistics.entries, 0)
        XCTAssertEqual(bytesOnDisk(), 0)
    }

    func testWithinTheTrustWindowAnEntryIsServedWithoutAsking() throws {
        let cache = try makeCache(trust: 60)
        let remote = FakeRemote()
        remote.set("a", randomBytes(10))
        try cache.open(key("a"), fetch: remote.fetch("a"))?.release()
        try cache.open(key("a"), fetch: remote.fetch("a"))?.release()
        XCTAssertEqual(remote.fetches, 1)
        XCTAssertEqual(cache.statistics.hits, 1)
    }

    func testAReaderWithAnotherEncryptionKeyIsNotServedTheEntryUnchecked() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        remote.set("a", randomBytes(10))
        try cache.open(key("a"), secretDigest: "key-1", fetch: remote.fetch("a"))?.release()
        try cache.open(key("a"), secretDigest: "key-2", fetch: remote.fetch("a"))?.release()
        XCTAssertEqual(remote.conditional, [nil, nil], "no If-None-Match for a reader with another key")
    }

    func testCopiesIntoAFileDescriptorInTheKernel() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        let bytes = randomBytes(3 << 20)
        remote.set("a", bytes)
        let file = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        defer { file.release() }
        let target = root + "/out"
        let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        try file.copy(into: FileDescriptorSink(fd: fd))
        close(fd)
        XCTAssertEqual(FileManager.default.contents(atPath: target).map { [UInt8]($0) }, bytes)
        // A pipe is no file: sendfile or plain reads carry it.
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let readEnd = fds[0]
        let reader = Thread {
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = Glibc.read(readEnd, &buffer, buffer.count)
                if n <= 0 { break }
                total += n
            }
            XCTAssertEqual(total, bytes.count)
        }
        reader.start()
        try file.copy(into: FileDescriptorSink(fd: fds[1]))
        close(fds[1])
        while !reader.isFinished { usleep(1000) }
        close(fds[0])
    }

    func testEntriesAreReadOnlyFiles() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        remote.set("a", randomBytes(10))
        let file = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        defer { file.release() }
        var st = stat()
        XCTAssertEqual(stat(file.path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o400)
        XCTAssertEqual(stat(root, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
    }
}

/// Results gathered from concurrent threads.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Bool] = []
    func add(_ v: Bool) { lock.lock(); items.append(v); lock.unlock() }
    var values: [Bool] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Runs `body` on `count` threads of their own at once (not a pool sized to the cores).
func runConcurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            body(i)
            group.leave()
        }
        thread.start()
    }
    group.wait()
}
