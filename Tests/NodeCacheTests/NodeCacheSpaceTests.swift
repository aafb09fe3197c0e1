import Foundation
import NodeCache
import ObjectStore
import XCTest

/// The cap, LRU eviction, pins and leases.
final class NodeCacheSpaceTests: NodeCacheTestCase {
    func testLeastRecentlyUsedEntriesAreEvictedToStayUnderTheCap() throws {
        let cache = try makeCache(capacity: 3_000_000)
        let remote = FakeRemote()
        for name in ["a", "b", "c", "d"] { remote.set(name, randomBytes(1_000_000)) }
        for name in ["a", "b", "c"] { try cache.open(key(name), fetch: remote.fetch(name))?.release() }
        try cache.open(key("a"), fetch: remote.fetch("a"))?.release()  // a is now newer than b
        try cache.open(key("d"), fetch: remote.fetch("d"))?.release()  // evicts b
        XCTAssertEqual(cache.statistics.evictions, 1)
        XCTAssertLessThanOrEqual(bytesOnDisk(), 3_000_000)
        let before = remote.downloads
        for name in ["a", "c", "d"] { try cache.open(key(name), fetch: remote.fetch(name))?.release() }
        XCTAssertEqual(remote.downloads, before, "a, c and d stayed")
        try cache.open(key("b"), fetch: remote.fetch("b"))?.release()
        XCTAssertEqual(remote.downloads, before + 1, "b was evicted")
    }

    func testAPinnedEntryIsNeverEvictedAndALeasedPathStays() throws {
        let cache = try makeCache(capacity: 2_000_000)
        let remote = FakeRemote()
        let kept = randomBytes(1_000_000)
        remote.set("held", kept)
        remote.set("leased", randomBytes(500_000))
        for i in 0..<6 { remote.set("other\(i)", randomBytes(500_000)) }
        let held = try XCTUnwrap(try cache.open(key("held"), fetch: remote.fetch("held")))
        let leased = try XCTUnwrap(try cache.open(key("leased"), fetch: remote.fetch("leased")))
        let leasedPath = leased.path
        leased.release(lease: 60)
        for i in 0..<6 {
            // With held (1 MB) and leased (0.5 MB) unevictable, 0.5 MB is left: each other
            // object evicts the previous one.
            try cache.open(key("other\(i)"), fetch: remote.fetch("other\(i)"))?.release()
            XCTAssertLessThanOrEqual(bytesOnDisk(), 2_000_000)
        }
        XCTAssertEqual(try read(held), kept)
        XCTAssertTrue(FileManager.default.fileExists(atPath: held.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: leasedPath))
        held.release()
        XCTAssertEqual(cache.statistics.pinnedEntries, 0)
    }

    func testWithEverythingPinnedAReadGoesPastTheCache() throws {
        let cache = try makeCache(capacity: 1_000_000)
        let remote = FakeRemote()
        remote.set("a", randomBytes(800_000))
        remote.set("b", randomBytes(800_000))
        let a = try XCTUnwrap(try cache.open(key("a"), fetch: remote.fetch("a")))
        XCTAssertNil(try cache.open(key("b"), fetch: remote.fetch("b")))
        XCTAssertEqual(cache.statistics.bypassed, 1)
        a.release()
        XCTAssertNotNil(try cache.open(key("b"), fetch: remote.fetch("b")))
    }

    func testTheCapHoldsUnderConcurrentFills() throws {
        let capacity: UInt64 = 4_000_000
        let cache = try makeCache(capacity: capacity)
        let remote = FakeRemote()
        remote.delay = 20_000
        for i in 0..<24 { remote.set("f\(i)", randomBytes(700_000)) }
        let stop = StopFlag()
        let worst = MaxBox()
        let monitor = Thread { [self] in
            while !stop.isSet { worst.note(bytesOnDisk()); usleep(500) }
        }
        monitor.start()
        let ok = ResultBox()
        runConcurrently(8) { [self] t in
            for round in 0..<3 {
                for i in stride(from: t, to: 24, by: 8) {
                    let name = "f\((i + round * 5) % 24)"
                    do {
                        if let file = try cache.open(key(name), fetch: remote.fetch(name)) {
                            let count = try read(file).count
                            if count != 700_000 { XCTFail("\(name): read \(count) bytes") }
                            ok.add(count == 700_000)
                            file.release()
                        }
                    } catch {
                        XCTFail("\(name): \(error)")
                        ok.add(false)
                    }
                }
            }
        }
        stop.set()
        while !monitor.isFinished { usleep(1000) }
        XCTAssertFalse(ok.values.contains(false))
        XCTAssertLessThanOrEqual(worst.value, capacity, "bytes on disk never exceeded the cap")
        XCTAssertGreaterThan(cache.statistics.evictions, 0)
        let s = cache.statistics
        XCTAssertLessThanOrEqual(s.sizeBytes, capacity)
        XCTAssertEqual(s.reservedBytes, 0)
        XCTAssertEqual(bytesOnDisk(), s.sizeBytes, "accounting matches the disk")
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

final class MaxBox: @unchecked Sendable {
    private let lock = NSLock()
    private var highest: UInt64 = 0
    func note(_ v: UInt64) { lock.lock(); highest = max(highest, v); lock.unlock() }
    var value: UInt64 { lock.lock(); defer { lock.unlock() }; return highest }
}
