import Foundation
import NodeCache
import ObjectStore
import XCTest

/// Write-through and invalidation.
final class NodeCacheWriteTests: NodeCacheTestCase {
    /// Writes `bytes` through a CacheWriter, as an upload would, and "stores" them remotely.
    func write(_ cache: NodeCache, _ remote: FakeRemote, _ name: String, _ bytes: [UInt8]) throws {
        let writer = try XCTUnwrap(cache.writer(for: key(name)))
        let source = WriteThroughSource(MemorySource(bytes), writer: writer)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while try buffer.withUnsafeMutableBytes({ try source.read(into: $0) }) > 0 {}
        remote.set(name, bytes)
        let digest = SHA256Digest()
        digest.update(bytes)
        writer.commit(ObjectInfo(key: name, size: UInt64(bytes.count), etag: remote.etag(name)!), sha256: digest.finalizeHex())
    }

    func testAFileWrittenThroughIsReadWithoutADownload() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        let bytes = randomBytes(100_000)
        try write(cache, remote, "w", bytes)
        let file = try XCTUnwrap(try cache.open(key("w"), fetch: remote.fetch("w")))
        XCTAssertEqual(try read(file), bytes)
        file.release()
        XCTAssertEqual(remote.downloads, 0)
        XCTAssertEqual(cache.statistics.writtenThrough, 1)
        XCTAssertEqual(cache.statistics.revalidations, 1)
    }

    func testAnAbandonedWriteLeavesNothingAndDropsTheOldEntry() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        try write(cache, remote, "w", randomBytes(1000))
        let writer = try XCTUnwrap(cache.writer(for: key("w")))
        randomBytes(500).withUnsafeBytes { writer.append($0) }
        writer.abandon()
        XCTAssertEqual(cache.statistics.entries, 0)
        XCTAssertEqual(bytesOnDisk(), 0)
    }

    func testAWriteTooLargeForTheCacheStopsCopyingButNeverFails() throws {
        let cache = try makeCache(capacity: 10_000)
        let remote = FakeRemote()
        let writer = try XCTUnwrap(cache.writer(for: key("w")))
        let bytes = randomBytes(50_000)
        bytes.withUnsafeBytes { writer.append($0) }
        remote.set("w", bytes)
        writer.commit(ObjectInfo(key: "w", size: 50_000, etag: remote.etag("w")!), sha256: "")
        XCTAssertEqual(cache.statistics.entries, 0)
        XCTAssertEqual(bytesOnDisk(), 0)
        XCTAssertNil(cache.writer(for: key("w"), expectedSize: 50_000), "known too large: no writer at all")
    }

    func testInvalidateDropsTheEntry() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        try write(cache, remote, "w", randomBytes(1000))
        cache.invalidate(key("w"))
        XCTAssertEqual(cache.statistics.entries, 0)
        XCTAssertEqual(bytesOnDisk(), 0)
        try write(cache, remote, "x", randomBytes(1000))
        cache.invalidate(store: "test", bucket: "b")
        XCTAssertEqual(cache.statistics.entries, 0)
    }

    func testADownloadOvertakenByAWriteDoesNotReplaceTheWrittenVersion() throws {
        let cache = try makeCache()
        let remote = FakeRemote()
        remote.set("w", randomBytes(1000))
        remote.delay = 300_000
        let newer = randomBytes(2000)
        let reader = Thread { [self] in
            // Starts downloading the old version, slowly.
            let file = try? cache.open(key("w"), fetch: remote.fetch("w"))
            XCTAssertNotNil(file)
            file?.release()
        }
        reader.start()
        usleep(100_000)
        remote.delay = 0
        try write(cache, remote, "w", newer)
        while !reader.isFinished { usleep(1000) }
        let file = try XCTUnwrap(try cache.open(key("w"), fetch: remote.fetch("w")))
        XCTAssertEqual(try read(file), newer)
        file.release()
        XCTAssertEqual(cache.statistics.entries, 1)
        XCTAssertEqual(bytesOnDisk(), 2000)
    }
}
