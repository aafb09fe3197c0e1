import Foundation
import ObjectStore
import S3
import XCTest

/// Multipart uploads and parallel ranged downloads of S3ObjectStore against the real SeaweedFS,
/// with 5 MiB parts (S3's smallest) so that a few tens of MiB make many parts.
final class S3TransferTests: XCTestCase {
    static let session = CurlSession()
    let partSize = 5 << 20
    var store: S3ObjectStore!
    var bucket: String!

    override func setUpWithError() throws {
        store = try makeStore(capacity: 3, concurrency: 4)
        bucket = "jobstore-transfer-\(UUID().uuidString.prefix(8).lowercased())"
        try store.createBucket(bucket)
    }

    override func tearDownWithError() throws {
        try store?.destroyBucket(bucket)
        XCTAssertEqual(store?.pool.inUse, 0, "every buffer and permit went back to the pool")
    }

    func makeStore(capacity: Int, concurrency: Int, endpointVariable: String = "JOBSTORE_TEST_S3_ENDPOINT") throws -> S3ObjectStore {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = env[endpointVariable], let key = env["JOBSTORE_TEST_S3_ACCESS_KEY"],
              let secret = env["JOBSTORE_TEST_S3_SECRET_KEY"] else {
            XCTFail("JOBSTORE_TEST_S3_* not set: run eval \"$(tools/dev-s3 start)\" first")
            throw XCTSkip("no S3 server")
        }
        let credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret)
        let client = S3Client(endpoint: .init(url: URL(string: endpoint)!, region: "us-east-1"), session: Self.session,
                              credentials: { credentials })
        return S3ObjectStore(client: client, pool: BufferPool(partSize: partSize, capacity: capacity), partConcurrency: concurrency)
    }

    func bytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    func read(_ key: String, options: GetOptions = GetOptions()) throws -> ([UInt8], ObjectInfo) {
        let sink = MemorySink()
        let info = try store.get(bucket, key: key, into: sink, options: options)
        return (sink.bytes, info)
    }

    func testSizesAroundThePartBoundariesRoundTrip() throws {
        for size in [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, partSize - 1, partSize, partSize + 1, 3 * partSize + 12345] {
            let body = bytes(size, seed: UInt64(size))
            let written = try store.put(bucket, key: "f/\(size)", body: MemorySource(body), options: PutOptions(metadata: ["n": "\(size)"]))
            XCTAssertEqual(written.size, UInt64(size))
            let (got, info) = try read("f/\(size)")
            XCTAssertEqual(got.count, size)
            XCTAssertTrue(got == body, "bytes of a \(size)-byte object")
            XCTAssertEqual(info.size, UInt64(size))
            XCTAssertEqual(info.metadata["n"], "\(size)")
        }
        XCTAssertEqual(try store.listMultipartUploads(bucket), [], "no upload is left behind")
    }

    /// The trailing checksum of a multipart object goes into its tags (with its ETag) and comes
    /// back as metadata on reads and heads; a replaced object never shows another's.
    func testTrailingMetadataReachesMultipartObjects() throws {
        let body = bytes(2 * partSize + 777)
        for (name, source) in [("file", MemorySource(body) as any ByteSource), ("stream", OneWaySource(body))] {
            let counter = CountingSource(source)
            let info = try store.put(bucket, key: name, body: counter,
                                     options: PutOptions(metadata: ["a": "1"], trailingMetadata: { ["sum": "\(counter.total)"] }))
            XCTAssertEqual(info.metadata["sum"], "\(body.count)", name)
            let head = try XCTUnwrap(store.head(bucket, key: name, options: GetOptions()))
            XCTAssertEqual(head.metadata["a"], "1", name)
            XCTAssertEqual(head.metadata["sum"], "\(body.count)", name)
            XCTAssertEqual(head.etag, info.etag, name)
            let (got, read) = try read(name)
            XCTAssertTrue(got == body, name)
            XCTAssertEqual(read.metadata["sum"], "\(body.count)", name)
        }
        // Another writer (Toil) replaces the object: its tags are gone with the old version.
        try store.client.send("PUT", bucket: bucket, key: "file", body: [1, 2, 3])
        XCTAssertNil(try store.head(bucket, key: "file", options: GetOptions())?.metadata["sum"])
        // Tags naming another ETag are not taken for this object's.
        let other = try store.put(bucket, key: "x", body: MemorySource(bytes(2 * partSize)),
                                  options: PutOptions(trailingMetadata: { ["sum": "1"] }))
        try store.client.send("PUT", bucket: bucket, key: "x", query: [("tagging", "")], body: Array(
            "<Tagging><TagSet><Tag><Key>sum</Key><Value>2</Value></Tag><Tag><Key>jobstore-etag</Key><Value>abc</Value></Tag></TagSet></Tagging>".utf8))
        XCTAssertNil(try store.head(bucket, key: "x", options: GetOptions())?.metadata["sum"], "tags of \(other.etag) replaced")
    }

    func testCreateOnlyRefusesAnExistingKeyAndLeavesNoUpload() throws {
        let old = bytes(100)
        try store.put(bucket, key: "slot", body: MemorySource(old), options: PutOptions(createOnly: true))
        XCTAssertThrowsError(try store.put(bucket, key: "slot", body: MemorySource(bytes(2 * partSize)), options: PutOptions(createOnly: true))) {
            XCTAssertEqual($0 as? ObjectStoreError, .preconditionFailed("slot: At least one of the pre-conditions you specified did not hold"), "\($0)")
        }
        XCTAssertTrue(try read("slot").0 == old)
        XCTAssertEqual(try store.listMultipartUploads(bucket), [])
    }

    func testAFailingSourceStoresNothingAndKeepsTheOldObject() throws {
        let old = bytes(1000)
        try store.put(bucket, key: "k", body: MemorySource(old), options: PutOptions())
        struct Gone: Error {}
        XCTAssertThrowsError(try store.put(bucket, key: "k", body: FailingSource(after: 2 * partSize + 10, error: Gone()), options: PutOptions())) {
            XCTAssertTrue($0 is Gone, "the source's error propagates unchanged: \($0)")
        }
        XCTAssertTrue(try read("k").0 == old)
        XCTAssertEqual(try store.listMultipartUploads(bucket), [])
    }

    /// One buffer in the pool and four parts wanted at once: reads and writes still finish.
    func testATinyPoolNeverDeadlocks() throws {
        let tight = try makeStore(capacity: 1, concurrency: 4)
        let body = bytes(4 * partSize + 1)
        let bucket = bucket!
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            do {
                try tight.put(bucket, key: "t\(i)", body: MemorySource(body), options: PutOptions())
                let sink = MemorySink()
                try tight.get(bucket, key: "t\(i)", into: sink, options: GetOptions())
                XCTAssertTrue(sink.bytes == body)
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(tight.pool.inUse, 0)
    }

    func testAReaderThatGoesAwayStopsTheDownload() throws {
        let body = bytes(4 * partSize)
        try store.put(bucket, key: "big", body: MemorySource(body), options: PutOptions())
        struct Closed: Error {}
        let sink = FailingSink(after: partSize + 3, error: Closed())
        XCTAssertThrowsError(try store.get(bucket, key: "big", into: sink, options: GetOptions())) {
            XCTAssertTrue($0 is Closed, "\($0)")
        }
    }

    func testAnObjectReplacedMidReadFailsInsteadOfMixingVersions() throws {
        try store.put(bucket, key: "m", body: MemorySource(bytes(3 * partSize, seed: 1)), options: PutOptions())
        let replacer = ReplacingSink(store: store, bucket: bucket, key: "m", replacement: bytes(3 * partSize, seed: 2))
        XCTAssertThrowsError(try store.get(bucket, key: "m", into: replacer, options: GetOptions())) {
            guard case .preconditionFailed = $0 as? ObjectStoreError else { return XCTFail("\($0)") }
        }
    }

    func testSSECMultipartNeedsTheKeyOnEveryPart() throws {
        let key = EncryptionKey(bytes: bytes(32, seed: 9))
        let body = bytes(2 * partSize + 5)
        try store.put(bucket, key: "secret", body: MemorySource(body), options: PutOptions(encryptionKey: key))
        XCTAssertTrue(try read("secret", options: GetOptions(encryptionKey: key)).0 == body)
        XCTAssertThrowsError(try read("secret")) {
            guard case .badEncryptionKey = $0 as? ObjectStoreError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try read("secret", options: GetOptions(encryptionKey: EncryptionKey(bytes: bytes(32, seed: 10))))) {
            guard case .badEncryptionKey = $0 as? ObjectStoreError else { return XCTFail("\($0)") }
        }
    }

    func testServerSideCopyInOnePieceAndInParts() throws {
        let body = bytes(3 * partSize + 99)
        try store.put(bucket, key: "src", body: MemorySource(body), options: PutOptions(metadata: ["m": "v"]))
        let info = try XCTUnwrap(store.head(bucket, key: "src", options: GetOptions()))
        try store.copy(from: (bucket, "src"), to: bucket, key: "whole", size: info.size, metadata: nil, ifMatch: info.etag,
                       sourceKey: nil, destinationKey: nil)
        try store.copy(from: (bucket, "src"), to: bucket, key: "parts", size: info.size, metadata: nil, ifMatch: info.etag,
                       sourceKey: nil, destinationKey: nil, partThreshold: UInt64(partSize))
        for key in ["whole", "parts"] {
            let (got, copied) = try read(key)
            XCTAssertTrue(got == body, key)
            XCTAssertEqual(copied.metadata["m"], "v", key)
        }
        XCTAssertThrowsError(try store.copy(from: (bucket, "src"), to: bucket, key: "x", size: info.size, metadata: nil,
                                            ifMatch: "\"not-the-etag\"", sourceKey: nil, destinationKey: nil)) {
            guard case .preconditionFailed = $0 as? ObjectStoreError else { return XCTFail("\($0)") }
        }
    }

    /// A bucket someone turned versioning on for still goes away whole. On moto, which (as AWS)
    /// refuses to delete a bucket that still holds versions; SeaweedFS deletes it regardless.
    func testDestroyRemovesEveryVersionOfAVersionedBucket() throws {
        let store = try makeStore(capacity: 2, concurrency: 2, endpointVariable: "JOBSTORE_TEST_MOTO_ENDPOINT")
        let bucket = "jobstore-versions-\(UUID().uuidString.prefix(8).lowercased())"
        try store.createBucket(bucket)
        let body = Array("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".utf8)
        try store.client.send("PUT", bucket: bucket, query: [("versioning", "")],
                              headers: [("Content-MD5", Base64.encode(MD5.digest(body)))], body: body)
        for i in 0..<3 { try store.put(bucket, key: "v", body: MemorySource([UInt8(i)]), options: PutOptions()) }
        try store.delete(bucket, keys: ["v"])  // a delete marker over three versions
        XCTAssertThrowsError(try store.client.send("DELETE", bucket: bucket)) {
            XCTAssertEqual(($0 as? S3Client.S3Error)?.code, "BucketNotEmpty", "the case destroy must handle: \($0)")
        }
        try store.destroyBucket(bucket)
        XCTAssertFalse(try store.bucketExists(bucket))
    }

    func testGarbageCollectionAndDestroyAbortUnfinishedUploads() throws {
        // An upload left unfinished, as a daemon killed mid-transfer leaves it.
        try store.client.send("POST", bucket: bucket, key: "left", query: [("uploads", "")])
        XCTAssertEqual(try store.listMultipartUploads(bucket).map(\.key), ["left"])
        XCTAssertEqual(try store.collectGarbage(bucket, olderThan: 3600), 0, "a young upload may still be running")
        XCTAssertEqual(try store.collectGarbage(bucket, olderThan: -60), 1)
        XCTAssertEqual(try store.listMultipartUploads(bucket), [])
        try store.client.send("POST", bucket: bucket, key: "left2", query: [("uploads", "")])
        try store.destroyBucket(bucket)
        XCTAssertFalse(try store.bucketExists(bucket))
        try store.createBucket(bucket)
    }
}

/// A body that cannot be rewound (a socket stream).
final class OneWaySource: ByteSource {
    let inner: MemorySource
    init(_ bytes: [UInt8]) { inner = MemorySource(bytes) }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { try inner.read(into: buffer) }
}

/// Counts what passes (as the job store's checksum does).
final class CountingSource: ByteSource, @unchecked Sendable {
    let inner: any ByteSource
    private(set) var total = 0
    init(_ inner: any ByteSource) { self.inner = inner }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        total += n
        return n
    }
}

/// Gives `after` bytes, then throws.
final class FailingSource: ByteSource {
    var left: Int
    let error: Error
    init(after: Int, error: Error) {
        left = after
        self.error = error
    }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard left > 0 else { throw error }
        let n = min(left, buffer.count)
        memset(buffer.baseAddress!, 0x5a, n)
        left -= n
        return n
    }
}

/// Takes `after` bytes, then throws.
final class FailingSink: ByteSink {
    var left: Int
    let error: Error
    init(after: Int, error: Error) {
        left = after
        self.error = error
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count <= left else { throw error }
        left -= bytes.count
    }
}

/// Replaces the object it is reading after its first bytes arrive.
final class ReplacingSink: ByteSink {
    let store: S3ObjectStore
    let bucket: String
    let key: String
    let replacement: [UInt8]
    var replaced = false
    init(store: S3ObjectStore, bucket: String, key: String, replacement: [UInt8]) {
        self.store = store
        self.bucket = bucket
        self.key = key
        self.replacement = replacement
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if !replaced {
            replaced = true
            try store.put(bucket, key: key, body: MemorySource(replacement), options: PutOptions())
        }
    }
}
