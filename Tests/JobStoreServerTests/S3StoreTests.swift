import Foundation
import JobStoreClient
import JobStoreWire
import S3
import XCTest

/// The job-store operations through the daemon on an `aws:` store, on real SeaweedFS; the
/// moto subclass below runs the same scenarios on the second S3 dialect.
class S3StoreTests: XCTestCase {
    var daemon: DaemonProcess!
    var client: JobStoreClient!
    var locator: String!
    /// The variable naming the S3 endpoint these tests use.
    class var endpointVariable: String { "JOBSTORE_TEST_S3_ENDPOINT" }

    override func setUp() async throws {
        daemon = try DaemonProcess.withS3(endpointVariable: Self.endpointVariable, extraArguments: ["--part-size", "5MiB"])
        client = try daemon.connect()
        locator = "aws:us-east-1:jobstore-test-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator))
    }

    override func tearDown() async throws {
        if let client, let locator {
            _ = try? await client.destroy(StoreRequest(locator: locator))
            let exists = try await client.storeExists(StoreRequest(locator: locator)).exists
            XCTAssertFalse(exists, "the test bucket is removed")
            client.connection.close()
        }
        daemon?.stop()
    }

    func testStoreLifecycleAndJobs() async throws {
        await assertFails(.alreadyExists, kind: .jobStoreExists) { try await client.initialize(StoreRequest(locator: locator)) }
        _ = try await client.resume(StoreRequest(locator: locator))
        let id = try await client.assignJobId(AssignJobIdRequest(locator: locator)).jobId
        _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: pattern(5000)))
        let loaded = try await client.loadJob(JobRequest(locator: locator, jobId: id)).body
        XCTAssertEqual(loaded, pattern(5000))
        let listed = try await client.listJobs(ListJobsRequest(locator: locator, includeBodies: true))
        XCTAssertEqual(listed.jobs.map(\.jobId), [id])
        await assertFails(.notFound, kind: .noSuchJob) { try await client.loadJob(JobRequest(locator: locator, jobId: "nope")) }
        let missing = "aws:us-east-1:jobstore-missing-\(UUID().uuidString.prefix(8).lowercased())"
        await assertFails(.notFound, kind: .noSuchJobStore) { try await client.resume(StoreRequest(locator: missing)) }
    }

    func testFilesHintsAndCleanup() async throws {
        _ = try await client.createJob(JobBody(locator: locator, jobId: "parent", body: [1]))
        for size in [0, 1, 1 << 20, 5 << 20, 12 << 20 + 3] {  // the last two: multipart (5 MiB parts)
            let bytes = pattern(size, seed: UInt8(size % 200))
            let info = try await client.upload(WriteFileRequest(locator: locator, basename: "f"), bytes, chunk: 1 << 20)
            let back = try await client.download(locator, info.fileId)
            XCTAssertTrue(back == bytes, "\(size) bytes")
            let stat = try await client.getFileSize(FileRequest(locator: locator, fileId: info.fileId))
            XCTAssertEqual(stat.size, UInt64(size))
        }
        let owned = try await client.upload(WriteFileRequest(locator: locator, jobId: "parent", cleanup: true, basename: "o"), [1])
        let hinted = try await client.upload(WriteFileRequest(locator: locator, jobId: "parent", cleanup: true, basename: "h.txt",
                                                              hints: ["wf", "task"]), [2])
        XCTAssertEqual(hinted.fileId, "wf/task/files/h.txt")
        let updated = try await client.updateFileStream(UpdateFileRequest(locator: locator, fileId: owned.fileId, executable: true)) {
            try await $0.write([9, 9])
        }
        XCTAssertTrue(updated.executable)
        _ = try await client.deleteJob(JobRequest(locator: locator, jobId: "parent"))
        for gone in [owned, hinted] {
            let exists = try await client.fileExists(FileRequest(locator: locator, fileId: gone.fileId)).exists
            XCTAssertFalse(exists)
        }
    }

    func testSharedFilesLogsAndPresignedURL() async throws {
        try await client.writeShared(locator, "config.pickle", [1, 2, 3])
        let shared = try await client.readShared(locator, "config.pickle")
        XCTAssertEqual(shared, [1, 2, 3])
        for i in 0..<3 { _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: [UInt8(i)])) }
        let logs = try await client.readLogs(ReadLogsRequest(locator: locator))
        XCTAssertEqual(logs.messages.count, 3)
        let again = try await client.readLogs(ReadLogsRequest(locator: locator))
        XCTAssertEqual(again.messages, [])
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "u"), Array("presigned".utf8))
        let url = try await client.getPublicUrl(PublicUrlRequest(locator: locator, fileId: info.fileId, expiresSeconds: 60)).url
        XCTAssertTrue(url.contains("X-Amz-Signature="))
        // The URL works without credentials.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        // Over https, the test CA of tools/dev-s3's TLS endpoint (as a user of the URL would need).
        let ca = url.hasPrefix("https:") ? ProcessInfo.processInfo.environment["JOBSTORE_TEST_S3_CA_BUNDLE"].map { ["--cacert", $0] } ?? [] : []
        curl.arguments = ["-sf"] + ca + [url]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        let fetched = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        XCTAssertEqual(curl.terminationStatus, 0)
        XCTAssertEqual(String(decoding: fetched, as: UTF8.self), "presigned")
    }
}

/// The same scenarios on moto_server, a second S3 dialect.
final class MotoStoreTests: S3StoreTests {
    override class var endpointVariable: String { "JOBSTORE_TEST_MOTO_ENDPOINT" }

    override func testStoreLifecycleAndJobs() async throws { try await super.testStoreLifecycleAndJobs() }
    override func testFilesHintsAndCleanup() async throws { try await super.testFilesHintsAndCleanup() }
    override func testSharedFilesLogsAndPresignedURL() async throws { try await super.testSharedFilesLogsAndPresignedURL() }
}

/// The same scenarios over https: tools/dev-s3's TLS terminator (stunnel4, a CA made per run) in
/// front of the same SeaweedFS; the daemon trusts the CA through --ca-bundle.
final class S3StoreOverTLSTests: S3StoreTests {
    override class var endpointVariable: String { "JOBSTORE_TEST_S3_TLS_ENDPOINT" }

    override func testStoreLifecycleAndJobs() async throws { try await super.testStoreLifecycleAndJobs() }
    override func testFilesHintsAndCleanup() async throws { try await super.testFilesHintsAndCleanup() }
    override func testSharedFilesLogsAndPresignedURL() async throws { try await super.testSharedFilesLogsAndPresignedURL() }
}

/// Integrity on real SeaweedFS (SSE-C: EncryptionOnS3Tests).
final class S3EncryptionAndIntegrityTests: XCTestCase {
    func testAnObjectChangedBehindTheDaemonsBackIsDataLoss() async throws {
        let daemon = try DaemonProcess.withS3()
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        let name = "jobstore-corrupt-\(UUID().uuidString.prefix(8).lowercased())"
        let locator = "aws:us-east-1:\(name)"
        _ = try await client.initialize(StoreRequest(locator: locator))
        let original = pattern(50_000)
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "data"), original)

        let env = ProcessInfo.processInfo.environment
        let credentials = AWSCredentials(accessKeyID: env["JOBSTORE_TEST_S3_ACCESS_KEY"]!, secretAccessKey: env["JOBSTORE_TEST_S3_SECRET_KEY"]!)
        let s3 = S3Client(endpoint: .init(url: URL(string: env["JOBSTORE_TEST_S3_ENDPOINT"]!)!, region: "us-east-1"),
                          session: CurlSession(), credentials: { credentials })
        let key = "files-flat/\(info.fileId)/data"
        let head = try s3.send("HEAD", bucket: "\(name)--toil", key: key)
        var tampered = original
        tampered[123] ^= 1
        try s3.send("PUT", bucket: "\(name)--toil", key: key,
                    headers: [("x-amz-meta-jobstore-sha256", head.headers["x-amz-meta-jobstore-sha256"] ?? "")], body: tampered)
        await assertFails(.dataLoss) { try await client.download(locator, info.fileId) }
        _ = try await client.destroy(StoreRequest(locator: locator))
        let exists = try await client.storeExists(StoreRequest(locator: locator)).exists
        XCTAssertFalse(exists)
    }
}
