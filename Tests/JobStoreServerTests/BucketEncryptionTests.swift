import Foundation
import JobStoreClient
import JobStoreWire
import S3
import XCTest

/// Initialize with an SSE-C key makes the bucket accept SSE-C (PutBucketEncryption with AWS's
/// "block NONE" rule, as Toil 9.4+ does), against a scripted S3 endpoint that records each
/// request: SeaweedFS lacks the rule and moto rejects it.
final class BucketEncryptionTests: XCTestCase {
    struct Recorded: Decodable {
        let method: String
        let path: String
        let query: String
        let headers: [String: String]
        let body: String
    }

    /// Runs `body` with a daemon whose S3 endpoint answers PutBucketEncryption with `status`.
    func withScriptedS3(encryptionStatus status: Int,
                        _ body: (JobStoreClient, DaemonProcess, () throws -> [Recorded]) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "jobstore-scripted-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try SupportScript("scripted_s3.py", arguments: [directory + "/port", directory + "/requests.jsonl", String(status)],
                                       portFile: directory + "/port")
        defer { server.stop() }
        let port = server.port
        let daemon = try DaemonProcess(extraArguments: ["--endpoint", "http://127.0.0.1:\(port)"],
                                       environment: ["AWS_ACCESS_KEY_ID": "scripted", "AWS_SECRET_ACCESS_KEY": "scripted-secret"],
                                       captureLog: true)
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        try await body(client, daemon) {
            let text = (try? String(contentsOfFile: directory + "/requests.jsonl", encoding: .utf8)) ?? ""
            return try text.split(separator: "\n").map { try JSONDecoder().decode(Recorded.self, from: Data($0.utf8)) }
        }
    }

    static let rule = "<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule>"
        + "<BlockedEncryptionTypes><EncryptionType>NONE</EncryptionType></BlockedEncryptionTypes></Rule>"
        + "</ServerSideEncryptionConfiguration>"

    func testInitializeWithAKeyUnblocksSSECOnTheNewBucket() async throws {
        try await withScriptedS3(encryptionStatus: 200) { client, _, requests in
            _ = try await client.initialize(StoreRequest(locator: "aws:us-east-1:scripted", sseKey: pattern(32)))
            let puts = try requests().filter { $0.method == "PUT" && $0.query.hasPrefix("encryption") }
            XCTAssertEqual(puts.count, 1)
            let put = try XCTUnwrap(puts.first)
            XCTAssertEqual(put.path, "/scripted--toil")
            XCTAssertEqual(put.body, Self.rule)
            let md5 = Base64.encode(MD5.digest(Array(put.body.utf8)))
            XCTAssertEqual(put.headers["content-md5"], md5, "AWS requires Content-MD5 on PutBucketEncryption")
            XCTAssertTrue(put.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=scripted/") == true, "signed")
            XCTAssertNil(put.headers["x-amz-server-side-encryption-customer-key"], "the key itself is not sent to configure the bucket")

            _ = try await client.initialize(StoreRequest(locator: "aws:us-east-1:plainbucket"))
            XCTAssertFalse(try requests().contains { $0.path == "/plainbucket--toil" && $0.query.hasPrefix("encryption") },
                           "without a key the bucket is left as the server makes it")
        }
    }

    func testARefusalFailsInitializeClearlyAndLeavesNoBucket() async throws {
        try await withScriptedS3(encryptionStatus: 403) { client, _, requests in
            await assertFails(.permissionDenied) {
                try await client.initialize(StoreRequest(locator: "aws:us-east-1:refused", sseKey: pattern(32)))
            }
            do {
                _ = try await client.initialize(StoreRequest(locator: "aws:us-east-1:refused", sseKey: pattern(32)))
            } catch let e as JobStoreError {
                XCTAssertTrue(e.message.contains("PutBucketEncryption on refused--toil was refused (403 AccessDenied"), e.message)
            }
            XCTAssertTrue(try requests().contains { $0.method == "DELETE" && $0.path == "/refused--toil" }, "the new bucket is removed")
            let exists = try await client.storeExists(StoreRequest(locator: "aws:us-east-1:refused")).exists
            XCTAssertFalse(exists)
        }
    }

    func testAServerWithoutTheCallIsNamedInTheLogAndTheStoreWorks() async throws {
        for status in [501, 400] {
            try await withScriptedS3(encryptionStatus: status) { client, daemon, _ in
                _ = try await client.initialize(StoreRequest(locator: "aws:us-east-1:lacking", sseKey: pattern(32)))
                let exists = try await client.storeExists(StoreRequest(locator: "aws:us-east-1:lacking")).exists
                XCTAssertTrue(exists)
                let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
                XCTAssertTrue(log.contains("could not allow SSE-C on its bucket: the S3 server does not"), "\(status): \(log)")
            }
        }
    }
}
