import Foundation
import S3
import XCTest

/// Each credential source, refresh before expiry, one refresh at a time, and the error that
/// names every source. The ECS and EC2 endpoints are scripted servers on 127.0.0.1.
final class CredentialChainTests: XCTestCase {
    static let session = CurlSession()
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "creds-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// An environment that finds nothing unless a test adds to it.
    func isolated(_ extra: [String: String] = [:]) -> [String: String] {
        ["HOME": directory, "AWS_EC2_METADATA_DISABLED": "true"].merging(extra) { $1 }
    }

    static func reply(_ body: String, status: String = "200 OK") -> String {
        "HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    func testTheEnvironmentComesFirst() throws {
        let chain = CredentialChain(environment: isolated(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s",
                                                           "AWS_SESSION_TOKEN": "t"]), session: Self.session)
        XCTAssertEqual(try chain.credentials(), AWSCredentials(accessKeyID: "AKENV", secretAccessKey: "s", sessionToken: "t"))
        XCTAssertEqual(chain.source, "environment")
    }

    func testSharedFilesWithAProfile() throws {
        try FileManager.default.createDirectory(atPath: directory + "/.aws", withIntermediateDirectories: true)
        try """
        [default]
        aws_access_key_id = AKDEFAULT
        aws_secret_access_key = d
        """.write(toFile: directory + "/.aws/credentials", atomically: true, encoding: .utf8)
        try """
        # comment
        [profile work]
        region = us-west-2
        aws_access_key_id=AKWORK
        aws_secret_access_key=w
        aws_session_token=wt
        """.write(toFile: directory + "/.aws/config", atomically: true, encoding: .utf8)
        let byDefault = CredentialChain(environment: isolated(), session: Self.session)
        XCTAssertEqual(try byDefault.credentials().accessKeyID, "AKDEFAULT")
        let work = CredentialChain(environment: isolated(["AWS_PROFILE": "work"]), session: Self.session)
        XCTAssertEqual(try work.credentials(), AWSCredentials(accessKeyID: "AKWORK", secretAccessKey: "w", sessionToken: "wt"))
        XCTAssertEqual(work.source, "shared files")
        let missing = CredentialChain(environment: isolated(["AWS_PROFILE": "nope"]), session: Self.session)
        XCTAssertThrowsError(try missing.credentials()) {
            XCTAssertTrue("\($0)".contains("profile nope: no [nope] in \(self.directory!)/.aws/credentials"), "\($0)")
        }
    }

    func testContainerCredentialsWithAnAuthorizationToken() throws {
        let server = try ScriptedHTTPServer(script: [Self.reply("""
            {"AccessKeyId":"AKECS","SecretAccessKey":"e","Token":"et","Expiration":"2099-01-01T00:00:00Z"}
            """)])
        let chain = CredentialChain(environment: isolated([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(server.port)/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer abc",
        ]), session: Self.session)
        let found = try chain.credentials()
        XCTAssertEqual(found.accessKeyID, "AKECS")
        XCTAssertEqual(found.sessionToken, "et")
        XCTAssertEqual(found.expiration, 4_070_908_800)
        XCTAssertEqual(chain.source, "ECS container")
        XCTAssertTrue(server.requests[0].hasPrefix("GET /creds"))
        XCTAssertTrue(server.requests[0].contains("Authorization: Bearer abc"))
        _ = try chain.credentials()
        XCTAssertEqual(server.requestCount, 1, "cached until close to expiry")
    }

    func testInstanceMetadataV2AndRefreshBeforeExpiry() throws {
        let clock = Clock(1_000_000)
        func document(_ key: String, expiresAt: Double) -> String {
            let date = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: expiresAt))
            return Self.reply(#"{"Code":"Success","AccessKeyId":"\#(key)","SecretAccessKey":"x","Token":"tok","Expiration":"\#(date)"}"#)
        }
        let server = try ScriptedHTTPServer(script: [
            Self.reply("TOKEN1"), Self.reply("my-role\n"), document("AKIMDS1", expiresAt: 1_000_000 + 3600),
            Self.reply("TOKEN2"), Self.reply("my-role"), document("AKIMDS2", expiresAt: 1_000_000 + 7200),
        ])
        let chain = CredentialChain(environment: isolated([
            "AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(server.port)/",
        ]), session: Self.session, now: { clock.now })
        XCTAssertEqual(try chain.credentials().accessKeyID, "AKIMDS1")
        XCTAssertTrue(server.requests[0].hasPrefix("PUT /latest/api/token"))
        XCTAssertTrue(server.requests[0].contains("X-aws-ec2-metadata-token-ttl-seconds: 21600"))
        XCTAssertTrue(server.requests[1].hasPrefix("GET /latest/meta-data/iam/security-credentials/ "))
        XCTAssertTrue(server.requests[1].contains("X-aws-ec2-metadata-token: TOKEN1"))
        XCTAssertTrue(server.requests[2].hasPrefix("GET /latest/meta-data/iam/security-credentials/my-role "))
        clock.now += 3000  // more than five minutes left: still the first set
        XCTAssertEqual(try chain.credentials().accessKeyID, "AKIMDS1")
        clock.now += 400  // within five minutes of expiry: refreshed, once, for all callers
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            XCTAssertEqual(try? chain.credentials().accessKeyID, "AKIMDS2")
        }
        XCTAssertEqual(server.requestCount, 6)
    }

    func testNoSourceNamesEverySourceTriedAndNoSecret() throws {
        let server = try ScriptedHTTPServer(script: [Self.reply("", status: "404 Not Found")])
        let chain = CredentialChain(environment: isolated([
            "AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(server.port)",
            "AWS_SECRET_ACCESS_KEY": "SUPERSECRET",
        ]), session: Self.session)
        XCTAssertThrowsError(try chain.credentials()) {
            let message = "\($0)"
            for part in ["environment: AWS_ACCESS_KEY_ID is not set", "shared files: profile default:",
                         "ECS container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set",
                         "EC2 instance metadata: instance metadata at http://127.0.0.1:\(server.port): HTTP 404"] {
                XCTAssertTrue(message.contains(part), "\(part) in \(message)")
            }
            XCTAssertFalse(message.contains("SUPERSECRET"))
        }
        XCTAssertFalse("\(AWSCredentials(accessKeyID: "A", secretAccessKey: "SUPERSECRET", sessionToken: "TOKEN"))".contains("SUPER"))
    }
}

/// A settable clock for expiry tests.
final class Clock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Double
    init(_ start: Double) { value = start }
    var now: Double {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}
