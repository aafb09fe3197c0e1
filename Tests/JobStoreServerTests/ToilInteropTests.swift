import Foundation
import JobStoreClient
import JobStoreWire
import S3
import XCTest

/// One S3 bucket, two writers: Toil 9.6's own AWSJobStore (boto3, pip `toil[aws]`) and the
/// daemon. Each reads what the other wrote: jobs, files, shared files and logs.
final class ToilInteropTests: XCTestCase {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ToilInterop/toil_interop.py").path

    /// Runs the Toil side; fails the test with its output when it does not exit 0.
    func runToil(_ mode: String, _ name: String, _ jsonPath: String) throws {
        let env = ProcessInfo.processInfo.environment
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [env["JOBSTORE_TEST_PYTHON"] ?? "python3", Self.script, mode, name, jsonPath]
        var childEnv = env.filter { !$0.key.hasPrefix("AWS_") }
        childEnv["AWS_ENDPOINT_URL"] = env["JOBSTORE_TEST_S3_ENDPOINT"]
        childEnv["AWS_ACCESS_KEY_ID"] = env["JOBSTORE_TEST_S3_ACCESS_KEY"]
        childEnv["AWS_SECRET_ACCESS_KEY"] = env["JOBSTORE_TEST_S3_SECRET_KEY"]
        childEnv["AWS_EC2_METADATA_DISABLED"] = "true"
        process.environment = childEnv
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "Toil \(mode) failed:\n\(text.suffix(3000))")
        if process.terminationStatus != 0 { throw XCTSkip("the Toil side failed") }
    }

    var daemon: DaemonProcess!
    var client: JobStoreClient!
    let bucketName = "interop-\(UUID().uuidString.prefix(8).lowercased())"
    var locator: String { "aws:us-east-1:\(bucketName)" }

    override func setUp() async throws {
        daemon = try DaemonProcess.withS3(extraArguments: ["--part-size", "5MiB"])
        client = try daemon.connect()
    }

    override func tearDown() async throws {
        _ = try? await client?.destroy(StoreRequest(locator: locator))
        client?.connection.close()
        daemon?.stop()
    }

    func testToilAndTheDaemonReadEachOthersStores() async throws {
        let client = client!
        let locator = locator
        let scratch = daemon.directory
        let name = bucketName

        // Toil writes; the daemon reads.
        try runToil("toil-writes", name, scratch + "/toil.json")
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/toil.json"))) as! [String: Any]
        _ = try await client.resume(StoreRequest(locator: locator))
        let job = try await client.loadJob(JobRequest(locator: locator, jobId: written["job_id"] as! String))
        XCTAssertEqual(Crypto.sha256Hex(job.body), written["job_sha256"] as? String, "Toil's pickled job, byte for byte")
        let listed = try await client.listJobs(ListJobsRequest(locator: locator))
        XCTAssertEqual(listed.jobs.map(\.jobId), [written["job_id"] as! String])
        let fileID = written["file_id"] as! String
        let bytes = try await client.download(locator, fileID)
        XCTAssertEqual(bytes.count, written["file_size"] as? Int)
        XCTAssertEqual(Crypto.sha256Hex(bytes), written["file_sha256"] as? String)
        let size = try await client.getFileSize(FileRequest(locator: locator, fileId: fileID)).size
        XCTAssertEqual(size, UInt64(bytes.count))
        let streamed = try await client.download(locator, written["stream_id"] as! String)
        XCTAssertEqual(streamed, Array("streamed by toil".utf8))
        let shared = try await client.readShared(locator, "toil-shared.txt")
        XCTAssertEqual(shared, Array("shared by toil".utf8))
        let logs = try await client.readLogs(ReadLogsRequest(locator: locator, readAll: true))
        XCTAssertEqual(Set(logs.messages.map { String(decoding: $0, as: UTF8.self) }),
                       ["log line one from toil", "log line two from toil"])

        // The daemon writes; Toil reads.
        let daemonJob = written["daemon_job_id"] as! String
        let pickled = [UInt8](Data(base64Encoded: written["daemon_job_pickle"] as! String)!)
        _ = try await client.createJob(JobBody(locator: locator, jobId: daemonJob, body: pickled))
        let big = pattern(7 << 20, seed: 3)  // more than one 5 MiB part below: a multipart object
        let bigFile = try await client.upload(WriteFileRequest(locator: locator, basename: "big.bin"), big)
        let small = Array("written by the daemon".utf8)
        let smallFile = try await client.upload(WriteFileRequest(locator: locator, jobId: daemonJob, cleanup: true, executable: true), small)
        let empty = try await client.getEmptyFileStoreId(WriteFileRequest(locator: locator))
        try await client.writeShared(locator, "daemon-shared.txt", Array("shared by the daemon".utf8))
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("log from the daemon".utf8)))
        let expected: [String: Any] = [
            "daemon_job_id": daemonJob,
            "files": [[bigFile.fileId, Crypto.sha256Hex(big), big.count], [smallFile.fileId, Crypto.sha256Hex(small), small.count],
                      [empty.fileId, Crypto.sha256Hex([UInt8]()), 0]],
            "shared_name": "daemon-shared.txt", "shared_content": "shared by the daemon",
            "log_lines": ["log from the daemon", "log line one from toil"],
        ]
        try JSONSerialization.data(withJSONObject: expected).write(to: URL(fileURLWithPath: scratch + "/daemon.json"))
        try runToil("toil-reads", name, scratch + "/daemon.json")
    }
}
