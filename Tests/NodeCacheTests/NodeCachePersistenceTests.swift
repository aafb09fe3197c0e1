import Foundation
import NodeCache
import ObjectStore
import XCTest

/// The on-disk index across restarts and crashes.
final class NodeCachePersistenceTests: NodeCacheTestCase {
    func testEntriesSurviveARestart() throws {
        let remote = FakeRemote()
        let bytes = randomBytes(10_000)
        remote.set("a", bytes)
        do {
            let cache = try makeCache()
            try cache.open(key("a"), fetch: remote.fetch("a"))?.release()
            cache.close()
        }
        let cache = try makeCache()
        XCTAssertEqual(cache.statistics.entries, 1)
        XCTAssertEqual(cache.statistics.sizeBytes, 10_000)
        let file = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertEqual(try read(file), bytes)
        file.release()
        XCTAssertEqual(remote.downloads, 1)
    }

    /// The directory removed under a running cache (an operator's `rm -rf` of a full scratch
    /// disk): entries whose data is gone are fetched again, new fills make the tree again, and
    /// reads never fail for it; trusted entries too.
    func testAWipedDirectoryIsRefilledNotFailed() throws {
        for trust in [0.0, 600] {
            let remote = FakeRemote()
            let a = randomBytes(10_000), b = randomBytes(7_000)
            remote.set("a", a)
            remote.set("b", b)
            let cache = try makeCache(trust: trust)
            defer { cache.close() }
            try cache.open(key("a"), fetch: remote.fetch("a"))?.release()
            try FileManager.default.removeItem(atPath: root)
            let again = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
            XCTAssertEqual(try read(again), a, "trust \(trust)")
            again.release()
            let other = try XCTUnwrap(try cache.open(key("b"), fetch: remote.fetch("b")))
            XCTAssertEqual(try read(other), b)
            other.release()
            XCTAssertEqual(remote.downloads, 3, "a twice (its data was gone), b once")
            XCTAssertEqual(cache.statistics.entries, 2)
            XCTAssertEqual(cache.statistics.sizeBytes, 17_000, "the lost entry's bytes are no longer counted")
            XCTAssertEqual(bytesOnDisk(), 17_000)
            let third = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
            XCTAssertEqual(try read(third), a)
            third.release()
            XCTAssertEqual(remote.downloads, 3, "served from the refilled entry")
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    func testAfterACrashDebrisIsRemovedAndCorruptEntriesAreNotServed() throws {
        let remote = FakeRemote()
        let good = randomBytes(10_000)
        remote.set("good", good)
        remote.set("bad", randomBytes(10_000))
        var badPath = ""
        do {
            let cache = try makeCache()
            try cache.open(key("good"), fetch: remote.fetch("good"))?.release()
            let bad = try XCTUnwrap(try cache.open(key("bad"), fetch: remote.fetch("bad")))
            badPath = bad.path
            bad.release()
            // No close(): as if killed. Debris of a fill in progress and of a half-published entry:
            FileManager.default.createFile(atPath: root + "/tmp/half-a-download", contents: Data(count: 5000))
            FileManager.default.createFile(atPath: root + "/entries/0123-no-manifest", contents: Data(count: 7000))
            NSLog("%@", "simulated crash")
        }
        // The bytes of one entry change behind the cache's back.
        chmod(badPath, 0o600)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: badPath))
        handle.write(Data(repeating: 0, count: 10))
        try handle.close()

        let cache = try makeCache()
        XCTAssertEqual(cache.statistics.entries, 2)
        XCTAssertEqual(bytesOnDisk(), 20_000, "debris removed at start-up")
        let file = try XCTUnwrap(try cache.open(key("good"), fetch: remote.fetch("good")))
        XCTAssertEqual(try read(file), good)
        file.release()
        let downloads = remote.downloads
        let refetched = try XCTUnwrap(try cache.open(key("bad"), fetch: remote.fetch("bad")))
        XCTAssertEqual(try read(refetched).count, 10_000)
        refetched.release()
        XCTAssertEqual(remote.downloads, downloads + 1, "the corrupt entry was downloaded again")
        XCTAssertEqual(cache.statistics.corrupt, 1)
    }

    func testASecondCacheOnTheSameDirectoryIsRefused() throws {
        let cache = try makeCache()
        XCTAssertThrowsError(try makeCache()) { error in
            XCTAssertTrue("\(error)".contains("in use"), "\(error)")
        }
        cache.close()
        XCTAssertNoThrow(try makeCache())
    }

    func testALoweredCapEvictsAtStartUp() throws {
        let remote = FakeRemote()
        do {
            let cache = try makeCache()
            for i in 0..<5 {
                remote.set("f\(i)", randomBytes(100_000))
                try cache.open(key("f\(i)"), fetch: remote.fetch("f\(i)"))?.release()
            }
            cache.close()
        }
        let cache = try makeCache(capacity: 250_000)
        XCTAssertLessThanOrEqual(cache.statistics.sizeBytes, 250_000)
        XCTAssertEqual(bytesOnDisk(), cache.statistics.sizeBytes)
    }
}
