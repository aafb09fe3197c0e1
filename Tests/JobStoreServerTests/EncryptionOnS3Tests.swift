import Foundation
import JobStoreClient
import JobStoreWire
import ObjectStore
import S3
import XCTest

/// SSE-C through every rpc on real SeaweedFS (which enforces SSE-C and keeps ciphertext at
/// rest), then the bucket inspected directly, without the daemon and without the key. moto
/// serves SSE-C objects without the key, so none of this may run on moto.
class EncryptionOnS3Tests: XCTestCase {
    /// The variable naming the S3 endpoint the daemon uses (the bucket is inspected on plain http).
    class var endpointVariable: String { "JOBSTORE_TEST_S3_ENDPOINT" }

    var daemon: DaemonProcess!
    var client: JobStoreClient!
    var s3: S3ObjectStore!
    let storeName = "jobstore-sse-\(UUID().uuidString.prefix(8).lowercased())"
    var locator: String { "aws:us-east-1:\(storeName)" }
    var bucket: String { "\(storeName)--toil" }
    let key = pattern(32, seed: 1)
    let otherKey = pattern(32, seed: 2)
    let outside = "jobstore-sse-src-\(UUID().uuidString.prefix(8).lowercased())"

    override func setUp() async throws {
        daemon = try DaemonProcess.withS3(endpointVariable: Self.endpointVariable, extraArguments: ["--part-size", "5MiB"], captureLog: true)
        client = try daemon.connect()
        s3 = DaemonProcess.testS3Store(pool: BufferPool(partSize: 5 << 20, capacity: 4))
        try s3.createBucket(outside)
        _ = try await client.initialize(StoreRequest(locator: locator, sseKey: key))
    }

    override func tearDown() async throws {
        _ = try? await client?.destroy(StoreRequest(locator: locator))
        try? s3?.destroyBucket(outside)
        client?.connection.close()
        daemon?.stop()
    }

    /// Every object's bytes, read straight from S3 with `sseKey` (nil: none).
    func raw(_ objectKey: String, sseKey: [UInt8]?) throws -> [UInt8] {
        let sink = MemorySink()
        try s3.get(bucket, key: objectKey, into: sink, options: GetOptions(encryptionKey: sseKey.flatMap { EncryptionKey(bytes: $0) }))
        return sink.bytes
    }

    func allKeys() throws -> [ObjectInfo] {
        var all: [ObjectInfo] = []
        var after = ""
        while true {
            let page = try s3.list(bucket, prefix: "", startAfter: after, maxKeys: 1000)
            all += page.objects
            guard page.truncated, let last = page.objects.last else { return all }
            after = last.key
        }
    }

    func testEveryCallPathStoresCiphertextAndNeedsTheKey() async throws {
        // Jobs, with an owned file, a hinted file and an association.
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j1", body: pattern(5000), sseKey: key))
        _ = try await client.updateJob(JobBody(locator: locator, jobId: "j1", body: pattern(6000), sseKey: key))
        let loaded = try await client.loadJob(JobRequest(locator: locator, jobId: "j1", sseKey: key)).body
        XCTAssertEqual(loaded, pattern(6000))
        let exists = try await client.jobExists(JobRequest(locator: locator, jobId: "j1", sseKey: key)).exists
        XCTAssertTrue(exists)
        let listed = try await client.listJobs(ListJobsRequest(locator: locator, includeBodies: true, sseKey: key))
        XCTAssertEqual(listed.jobs.map(\.body), [pattern(6000)])
        // Files: small, multipart (12 MiB in 5 MiB parts), hinted, updated, empty, associated.
        let small = try await client.upload(WriteFileRequest(locator: locator, basename: "small", sseKey: key), pattern(70_000))
        let big = try await client.upload(WriteFileRequest(locator: locator, basename: "big", sseKey: key), pattern(12 << 20, seed: 3),
                                          chunk: 1 << 20)
        let hinted = try await client.assignFileId(WriteFileRequest(locator: locator, basename: "h.txt", hints: ["wf"], sseKey: key))
        _ = try await client.upload(WriteFileRequest(locator: locator, basename: "h.txt", hints: ["wf"], fileId: hinted.fileId,
                                                     sseKey: key), pattern(900))
        let updated = try await client.upload(WriteFileRequest(locator: locator, jobId: "j1", cleanup: true, basename: "u", sseKey: key),
                                              [1])
        _ = try await client.updateFileStream(UpdateFileRequest(locator: locator, fileId: updated.fileId, sseKey: key)) {
            try await $0.write(pattern(4000, seed: 5))
        }
        let empty = try await client.getEmptyFileStoreId(WriteFileRequest(locator: locator, sseKey: key))
        _ = try await client.associateJobWithFile(AssociateJobWithFileRequest(locator: locator, jobId: "j1", fileId: empty.fileId,
                                                                              sseKey: key))
        let size = try await client.getFileSize(FileRequest(locator: locator, fileId: big.fileId, sseKey: key)).size
        XCTAssertEqual(size, 12 << 20)
        let present = try await client.fileExists(FileRequest(locator: locator, fileId: small.fileId, sseKey: key)).exists
        XCTAssertTrue(present)
        let bigBack = try await client.download(locator, big.fileId, sseKey: key)
        XCTAssertTrue(bigBack == pattern(12 << 20, seed: 3))
        let owned = try await client.listFiles(ListFilesRequest(locator: locator, jobId: "j1", sseKey: key)).files
        XCTAssertEqual(Set(owned.map(\.fileId)), [updated.fileId, empty.fileId])
        // Shared files (config.pickle stays in the clear, as in Toil; encrypted=False too), logs.
        try await client.writeShared(locator, "config.pickle", [7], sseKey: key)
        try await client.writeShared(locator, "environment.pickle", pattern(3000), sseKey: key)
        try await client.writeShared(locator, "plain.txt", [9, 9], sseKey: key, unencrypted: true)
        let environment = try await client.readShared(locator, "environment.pickle", sseKey: key)
        XCTAssertEqual(environment, pattern(3000))
        let plain = try await client.readShared(locator, "plain.txt", sseKey: key)
        XCTAssertEqual(plain, [9, 9], "a shared file written with encrypted=False reads back with a key configured")
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("a log line".utf8), sseKey: key))
        let logs = try await client.readLogs(ReadLogsRequest(locator: locator, sseKey: key)).messages
        XCTAssertEqual(logs, [Array("a log line".utf8)])
        // Imports (server-side copy of a plain S3 object; a local file) and an export.
        try s3.put(outside, key: "src.bin", body: MemorySource(pattern(6 << 20, seed: 8)), options: PutOptions())
        let copied = try await client.importFile(ImportFileRequest(locator: locator, url: "s3://\(outside)/src.bin", sseKey: key))
        let localPath = daemon.directory + "/import.bin"
        FileManager.default.createFile(atPath: localPath, contents: Data(pattern(20_000, seed: 6)))
        let streamed = try await client.importFile(ImportFileRequest(locator: locator, url: "file://\(localPath)", sseKey: key))
        _ = try await client.exportFile(ExportFileRequest(locator: locator, fileId: small.fileId, url: "s3://\(outside)/out.bin", sseKey: key))
        let exported = MemorySink()
        try s3.get(outside, key: "out.bin", into: exported, options: GetOptions())
        XCTAssertTrue(exported.bytes == pattern(70_000), "an export is readable without the key")
        // Presigned URLs of SSE-C objects are refused; config.pickle's is given.
        await assertFails(.failedPrecondition) { try await client.getPublicUrl(PublicUrlRequest(locator: locator, fileId: small.fileId, sseKey: key)) }
        await assertFails(.failedPrecondition) { try await client.getPublicUrl(PublicUrlRequest(locator: locator, fileId: small.fileId)) }
        await assertFails(.failedPrecondition) {
            try await client.getSharedPublicUrl(PublicUrlRequest(locator: locator, name: "environment.pickle", sseKey: key))
        }
        let configURL = try await client.getSharedPublicUrl(PublicUrlRequest(locator: locator, name: "config.pickle", sseKey: key)).url
        XCTAssertTrue(configURL.hasPrefix("http"))

        // Behind the daemon's back: every non-empty object but config.pickle and plain.txt refuses
        // a keyless GET and another key's, and gives the right bytes with the key.
        let objects = try allKeys()
        let expected: [String: [UInt8]] = [
            "jobs/j1": pattern(6000), "environment.pickle": pattern(3000),
            "files-flat/\(small.fileId)/small": pattern(70_000), "files-flat/\(big.fileId)/big": pattern(12 << 20, seed: 3),
            "files/\(hinted.fileId)": pattern(900), "files-flat/\(updated.fileId)/u": pattern(4000, seed: 5),
            "files-flat/\(copied.fileId)/src.bin": pattern(6 << 20, seed: 8),
            "files-flat/\(streamed.fileId)/import.bin": pattern(20_000, seed: 6),
        ]
        for (objectKey, bytes) in expected {
            XCTAssertTrue(objects.contains { $0.key == objectKey }, "\(objectKey) is in the bucket")
            XCTAssertTrue(try raw(objectKey, sseKey: key) == bytes, "\(objectKey) with the key")
        }
        var checked = 0
        for object in objects where object.size > 0 && !["config.pickle", "plain.txt"].contains(object.key) {
            XCTAssertThrowsError(try raw(object.key, sseKey: nil), "\(object.key) refuses a keyless GET") {
                guard case ObjectStoreError.badEncryptionKey = $0 else { return XCTFail("\(object.key): \($0)") }
            }
            XCTAssertThrowsError(try raw(object.key, sseKey: otherKey), "\(object.key) refuses another key")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, expected.count + 1, "jobs, files, shared files and logs were all checked")
        XCTAssertTrue(objects.contains { $0.key.hasPrefix("logs/") })
        XCTAssertEqual(try raw("config.pickle", sseKey: nil), [7], "config.pickle is never encrypted")
        XCTAssertEqual(try raw("plain.txt", sseKey: nil), [9, 9], "encrypted=False stores in the clear")

        _ = try await client.deleteFile(FileRequest(locator: locator, fileId: hinted.fileId, sseKey: key))
        _ = try await client.deleteJob(JobRequest(locator: locator, jobId: "j1", sseKey: key))
        let gone = try await client.fileExists(FileRequest(locator: locator, fileId: updated.fileId, sseKey: key)).exists
        XCTAssertFalse(gone, "the job's cleanup files went with it")
    }

    func testReadsWithoutTheKeyOrWithAnotherFailEvenWhenCachedOrRemembered() async throws {
        let file = try await client.upload(WriteFileRequest(locator: locator, basename: "f", sseKey: key), pattern(100_000))
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j", body: [1, 2], sseKey: key))
        // Read with the key: the node cache holds the plaintext, the job-body cache the body.
        let first = try await client.download(locator, file.fileId, sseKey: key)
        XCTAssertTrue(first == pattern(100_000))
        _ = try await client.loadJob(JobRequest(locator: locator, jobId: "j", sseKey: key))
        let toil = "Your AWS encryption key is most likely configured incorrectly"
        for wrong in [[], otherKey] {
            do {
                _ = try await client.download(locator, file.fileId, sseKey: wrong)
                XCTFail("read without the right key")
            } catch let e as JobStoreError {
                XCTAssertEqual(e.code, .permissionDenied)
                XCTAssertEqual(e.kind, .badEncryptionKey)
                XCTAssertTrue(e.message.hasPrefix(toil), e.message)
            }
            await assertFails(.permissionDenied, kind: .badEncryptionKey) {
                try await client.loadJob(JobRequest(locator: locator, jobId: "j", sseKey: wrong))
            }
            await assertFails(.permissionDenied, kind: .badEncryptionKey) {
                try await client.getFileSize(FileRequest(locator: locator, fileId: file.fileId, sseKey: wrong))
            }
            await assertFails(.permissionDenied, kind: .badEncryptionKey) {
                try await client.readFile(ReadFileRequest(locator: locator, fileId: file.fileId, linkOk: true, sseKey: wrong))
            }
        }
        // A short key and a key path are refused before anything reaches S3.
        await assertFails(.invalidArgument, message: "sse_key must be exactly 32 bytes (the content of Toil's --sseKey file, "
                          + "a 32-character key); this call sent 31.") {
            try await client.download(locator, file.fileId, sseKey: Array(key.prefix(31)))
        }
        await assertFails(.invalidArgument) {
            try await client.resume(StoreRequest(locator: locator, options: StoreOptions(sseKeyPath: "/etc/shadow")))
        }
        let again = try await client.download(locator, file.fileId, sseKey: key)
        XCTAssertTrue(again == pattern(100_000), "the right key still reads")
        let stats = try await client.stats()
        XCTAssertGreaterThan((stats.cache?.hits ?? 0) + (stats.cache?.revalidations ?? 0), 0, "the keyed reads went through the cache")
    }

    /// SeaweedFS lacks PutBucketEncryption: Initialize with a key says so in the log, once,
    /// and the store works (SeaweedFS accepts SSE-C without it).
    func testInitializeWithAKeyOnAServerWithoutBucketEncryptionWarns() throws {
        let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("could not allow SSE-C on its bucket"), log)
    }
}

/// SSE-C over https (the key travels in headers: TLS is what AWS requires for SSE-C).
final class EncryptionOverTLSTests: EncryptionOnS3Tests {
    override class var endpointVariable: String { "JOBSTORE_TEST_S3_TLS_ENDPOINT" }

    override func testEveryCallPathStoresCiphertextAndNeedsTheKey() async throws {
        try await super.testEveryCallPathStoresCiphertextAndNeedsTheKey()
    }
    override func testReadsWithoutTheKeyOrWithAnotherFailEvenWhenCachedOrRemembered() async throws {
        try await super.testReadsWithoutTheKeyOrWithAnotherFailEvenWhenCachedOrRemembered()
    }
}
