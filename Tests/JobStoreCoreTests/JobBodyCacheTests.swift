@testable import JobStoreCore
import XCTest

/// The bounded memory of job bodies that loads revalidate.
final class JobBodyCacheTests: XCTestCase {
    func testEntriesAreOfferedOnlyWithTheirKey() {
        let cache = JobBodyCache()
        cache.remember("jobs/a", etag: "\"e1\"", body: [1, 2, 3], keyDigest: nil)
        XCTAssertEqual(cache.lookup("jobs/a", keyDigest: nil)?.etag, "\"e1\"")
        XCTAssertEqual(cache.lookup("jobs/a", keyDigest: nil)?.body, [1, 2, 3])
        XCTAssertNil(cache.lookup("jobs/a", keyDigest: "k"), "a body read without SSE-C is not offered to a load with a key")
        cache.remember("jobs/b", etag: "\"e2\"", body: [4], keyDigest: "k")
        XCTAssertNil(cache.lookup("jobs/b", keyDigest: "other"))
        XCTAssertEqual(cache.lookup("jobs/b", keyDigest: "k")?.body, [4])
        cache.forget("jobs/a")
        XCTAssertNil(cache.lookup("jobs/a", keyDigest: nil))
        cache.forgetAll()
        XCTAssertEqual(cache.count, 0)
        XCTAssertEqual(cache.byteCount, 0)
    }

    func testNoETagOrAnOversizedBodyIsNotKeptAndDropsTheOldEntry() {
        let cache = JobBodyCache(capacityBytes: 1000)
        cache.remember("jobs/a", etag: "\"e1\"", body: [1], keyDigest: nil)
        cache.remember("jobs/a", etag: "", body: [2], keyDigest: nil)
        XCTAssertNil(cache.lookup("jobs/a", keyDigest: nil), "a write without an ETag leaves nothing stale")
        cache.remember("jobs/a", etag: "\"e1\"", body: [1], keyDigest: nil)
        cache.remember("jobs/a", etag: "\"e2\"", body: [UInt8](repeating: 0, count: 1001), keyDigest: nil)
        XCTAssertNil(cache.lookup("jobs/a", keyDigest: nil))
        XCTAssertEqual(cache.byteCount, 0)
    }

    func testTheLeastRecentlyUsedGoFirstAndTheBoundHolds() {
        let cache = JobBodyCache(capacityBytes: 10_000)
        for i in 0..<10 {
            cache.remember("jobs/\(i)", etag: "\"\(i)\"", body: [UInt8](repeating: UInt8(i), count: 1000), keyDigest: nil)
        }
        XCTAssertEqual(cache.byteCount, 10_000)
        _ = cache.lookup("jobs/0", keyDigest: nil)  // now the most recently used
        cache.remember("jobs/10", etag: "\"10\"", body: [UInt8](repeating: 10, count: 1000), keyDigest: nil)
        XCTAssertLessThanOrEqual(cache.byteCount, 7_500, "evicted down to three quarters")
        XCTAssertNotNil(cache.lookup("jobs/0", keyDigest: nil), "a recently used entry stays")
        XCTAssertNotNil(cache.lookup("jobs/10", keyDigest: nil), "the new entry stays")
        XCTAssertNil(cache.lookup("jobs/1", keyDigest: nil), "the least recently used went")
        // Rewriting a key replaces its bytes rather than adding to them.
        let before = cache.byteCount
        cache.remember("jobs/10", etag: "\"10b\"", body: [UInt8](repeating: 10, count: 500), keyDigest: nil)
        XCTAssertEqual(cache.byteCount, before - 500)
    }
}
