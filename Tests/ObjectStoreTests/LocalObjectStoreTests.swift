import Foundation
import ObjectStore
import XCTest

final class LocalObjectStoreTests: XCTestCase {
    var root: String!
    var store: LocalObjectStore!
    var bucket: String { root + "/store" }

    override func setUp() {
        root = NSTemporaryDirectory() + "los-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        store = LocalObjectStore(durable: false)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testBucketLifecycle() throws {
        XCTAssertFalse(try store.bucketExists(bucket))
        try store.createBucket(bucket)
        XCTAssertTrue(try store.bucketExists(bucket))
        XCTAssertThrowsError(try store.createBucket(bucket)) { XCTAssertEqual($0 as? ObjectStoreError, .bucketAlreadyExists(bucket)) }
        try store.destroyBucket(bucket)
        try store.destroyBucket(bucket)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bucket))
        XCTAssertThrowsError(try store.put(bucket, key: "k", body: MemorySource([1]), options: PutOptions())) {
            XCTAssertEqual($0 as? ObjectStoreError, .noSuchBucket(bucket))
        }
    }

    func testPutGetHeadRangeAndMetadata() throws {
        try store.createBucket(bucket)
        let info = try store.put(bucket, key: "a/b/c", body: MemorySource(Array("hello world".utf8)),
                                 options: PutOptions(metadata: ["x": "1"], trailingMetadata: { ["y": "2"] }))
        XCTAssertEqual(info.size, 11)
        let sink = MemorySink()
        let got = try store.get(bucket, key: "a/b/c", into: sink, options: GetOptions())
        XCTAssertEqual(String(decoding: sink.bytes, as: UTF8.self), "hello world")
        XCTAssertEqual(got.metadata, ["x": "1", "y": "2"])
        XCTAssertEqual(got.etag, info.etag)
        let part = MemorySink()
        try store.get(bucket, key: "a/b/c", into: part, options: GetOptions(range: 6..<11))
        XCTAssertEqual(String(decoding: part.bytes, as: UTF8.self), "world")
        XCTAssertEqual(try store.head(bucket, key: "a/b/c", options: GetOptions())?.size, 11)
        XCTAssertNil(try store.head(bucket, key: "a/b", options: GetOptions()))
        XCTAssertThrowsError(try store.get(bucket, key: "a/b/c", into: MemorySink(), options: GetOptions(ifMatch: "other")))
        XCTAssertThrowsError(try store.get(bucket, key: "nope", into: MemorySink(), options: GetOptions())) {
            guard case .noSuchKey = $0 as? ObjectStoreError else { return XCTFail("\($0)") }
        }
    }

    func testCreateOnlyAndOverwrite() throws {
        try store.createBucket(bucket)
        try store.put(bucket, key: "k", body: MemorySource([1]), options: PutOptions(createOnly: true))
        XCTAssertThrowsError(try store.put(bucket, key: "k", body: MemorySource([2]), options: PutOptions(createOnly: true))) {
            guard case .preconditionFailed = $0 as? ObjectStoreError else { return XCTFail("\($0)") }
        }
        let first = try XCTUnwrap(try store.head(bucket, key: "k", options: GetOptions()))
        try store.put(bucket, key: "k", body: MemorySource([3, 3]), options: PutOptions())
        let second = try XCTUnwrap(try store.head(bucket, key: "k", options: GetOptions()))
        XCTAssertNotEqual(first.etag, second.etag)
        XCTAssertEqual(second.size, 2)
        // The replaced version is gone from disk.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bucket + "/versions").count, 1)
    }

    final class FailingSource: ByteSource {
        struct Failure: Error {}
        var sent = 0
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            if sent > 3 { throw Failure() }
            sent += 1
            buffer.initializeMemory(as: UInt8.self, repeating: 9)
            return buffer.count
        }
    }

    func testAFailedPutLeavesTheOldObject() throws {
        try store.createBucket(bucket)
        try store.put(bucket, key: "k", body: MemorySource([1, 2, 3]), options: PutOptions())
        XCTAssertThrowsError(try store.put(bucket, key: "k", body: FailingSource(), options: PutOptions())) {
            XCTAssertTrue($0 is FailingSource.Failure, "the source's own error propagates")
        }
        XCTAssertThrowsError(try store.put(bucket, key: "new", body: FailingSource(), options: PutOptions()))
        let sink = MemorySink()
        try store.get(bucket, key: "k", into: sink, options: GetOptions())
        XCTAssertEqual(sink.bytes, [1, 2, 3])
        XCTAssertNil(try store.head(bucket, key: "new", options: GetOptions()))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bucket + "/versions").count, 1)
    }

    func testListIsOrderedPagedAndPrefixed() throws {
        try store.createBucket(bucket)
        let keys = ["a", "a-c", "a/b", "a/c/d", "b", "jobs/1", "jobs/2", "jobs/10"]
        for k in keys { try store.put(bucket, key: k, body: MemorySource([]), options: PutOptions()) }
        XCTAssertEqual(try store.list(bucket, prefix: "", startAfter: "", maxKeys: 100).objects.map(\.key), keys.sorted())
        let jobs = try store.list(bucket, prefix: "jobs/", startAfter: "", maxKeys: 2)
        XCTAssertEqual(jobs.objects.map(\.key), ["jobs/1", "jobs/10"])
        XCTAssertTrue(jobs.truncated)
        XCTAssertEqual(try store.list(bucket, prefix: "jobs/", startAfter: "jobs/10", maxKeys: 2).objects.map(\.key), ["jobs/2"])
        XCTAssertEqual(try store.list(bucket, prefix: "a/", startAfter: "", maxKeys: 10).objects.map(\.key), ["a/b", "a/c/d"])
        XCTAssertEqual(try store.list(bucket, prefix: "a/c", startAfter: "", maxKeys: 10).objects.map(\.key), ["a/c/d"])
        try store.delete(bucket, keys: ["a/c/d", "missing", "b"])
        XCTAssertEqual(try store.list(bucket, prefix: "", startAfter: "", maxKeys: 100).objects.count, keys.count - 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bucket + "/objects/a.d/c.d"), "empty directories are pruned")
    }

    func testKeysCannotEscapeTheStore() throws {
        try store.createBucket(bucket)
        for key in ["../x", "a/../../x", "", "a//b", "/abs", "a/./b", "x\u{0}y"] {
            XCTAssertThrowsError(try store.put(bucket, key: key, body: MemorySource([1]), options: PutOptions()), key) {
                guard case .invalidName = $0 as? ObjectStoreError else { return XCTFail("\(key): \($0)") }
            }
        }
        XCTAssertThrowsError(try store.createBucket("relative/path"))
    }

    func testConcurrentWritersOfOneKeyLeaveOneWholeVersion() throws {
        try store.createBucket(bucket)
        let store = self.store!
        let bucket = self.bucket
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let bytes = [UInt8](repeating: UInt8(i), count: 100_000)
            for _ in 0..<10 { _ = try? store.put(bucket, key: "hot", body: MemorySource(bytes), options: PutOptions()) }
        }
        let sink = MemorySink()
        try store.get(bucket, key: "hot", into: sink, options: GetOptions())
        XCTAssertEqual(sink.bytes.count, 100_000)
        XCTAssertEqual(Set(sink.bytes).count, 1, "never a mix of two writers")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bucket + "/versions").count, 1)
    }

    func testGarbageCollectionRemovesOnlyOldUnlinkedVersions() throws {
        try store.createBucket(bucket)
        try store.put(bucket, key: "k", body: MemorySource([1]), options: PutOptions())
        try FileManager.default.createDirectory(atPath: bucket + "/versions/orphan", withIntermediateDirectories: true)
        XCTAssertEqual(try store.collectGarbage(bucket, olderThan: 3600), 0)
        XCTAssertEqual(try store.collectGarbage(bucket, olderThan: -10), 1)
        XCTAssertNotNil(try store.head(bucket, key: "k", options: GetOptions()))
    }
}
