import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// The daemon's S3 session over TLS, through a TLS terminator (stunnel4) in front of SeaweedFS
/// with a private CA made for this run (Tests/Support/tls_rig.py): the CA from each of the
/// three sources the AWS tools read, and the failures an operator meets (no CA, another host's
/// certificate, an expired one), which must be clear and fast rather than retried.
final class TLSEndpointTests: XCTestCase {
    var rig: TLSRig!
    var rigDirectory: String { rig.directory }
    var ports: [String: Int] { rig.ports }
    var ca: String { rig.ca }

    override func setUp() async throws {
        rig = try TLSRig()
    }

    override func tearDown() async throws {
        rig?.stop()
    }

    /// A daemon whose aws: stores live behind the rig's `service` endpoint.
    func daemon(_ service: String, arguments: [String] = [], environment: [String: String] = [:]) throws -> DaemonProcess {
        let env = ProcessInfo.processInfo.environment
        let credentials = ["AWS_ACCESS_KEY_ID": env["JOBSTORE_TEST_S3_ACCESS_KEY"] ?? "", "AWS_SECRET_ACCESS_KEY": env["JOBSTORE_TEST_S3_SECRET_KEY"] ?? ""]
        return try DaemonProcess(extraArguments: ["--endpoint", "https://127.0.0.1:\(ports[service]!)", "--part-size", "5MiB"] + arguments,
                                 environment: credentials.merging(environment) { $1 }, captureLog: true)
    }

    /// Initialize, a multipart file (12 MiB in 5 MiB parts) there and back, destroy: over TLS.
    func roundTrip(_ daemon: DaemonProcess, file: StaticString = #filePath, line: UInt = #line) async throws {
        let client = try daemon.connect()
        defer { client.connection.close() }
        let locator = "aws:us-east-1:jobstore-tls-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator))
        let bytes = pattern(12 << 20, seed: 5)
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "big"), bytes, chunk: 1 << 20)
        let back = try await client.download(locator, info.fileId)
        XCTAssertTrue(back == bytes, "the bytes came back over TLS", file: file, line: line)
        _ = try await client.destroy(StoreRequest(locator: locator))
    }

    func testAPrivateCAFromEachSourceIsTrusted() async throws {
        try await roundTrip(try daemon("good", arguments: ["--ca-bundle", ca]))
        try await roundTrip(try daemon("good", environment: ["AWS_CA_BUNDLE": ca]))
        let config = rigDirectory + "/aws-config"
        try "[default]\nregion = us-east-1\n\n[profile tls]\nca_bundle = \(ca)\n".write(toFile: config, atomically: true, encoding: .utf8)
        try await roundTrip(try daemon("good", environment: ["AWS_CONFIG_FILE": config, "AWS_PROFILE": "tls"]))
    }

    /// Each refusal fails the first call at once (no retries with backoff), naming the endpoint,
    /// libcurl's reason and where a CA can be given.
    func testCertificateProblemsFailAtOnceAndSayWhy() async throws {
        let cases: [(service: String, arguments: [String], reason: String)] = [
            ("good", [], "unable to get local issuer certificate"),
            ("wrong_host", ["--ca-bundle", ca], "127.0.0.1"),
            ("expired", ["--ca-bundle", ca], "expired"),
        ]
        for (service, arguments, reason) in cases {
            let daemon = try daemon(service, arguments: arguments)
            let client = try daemon.connect()
            let started = Date()
            do {
                _ = try await client.initialize(StoreRequest(locator: "aws:us-east-1:jobstore-tls-refused"))
                XCTFail("\(service): a refused certificate must fail the call")
            } catch let e as JobStoreError {
                XCTAssertEqual(e.code, .unavailable, "\(service): \(e)")
                XCTAssertTrue(e.message.contains("the TLS certificate of https://127.0.0.1:\(ports[service]!)"), "\(service): \(e.message)")
                XCTAssertTrue(e.message.contains(reason), "\(service): \(e.message)")
                XCTAssertTrue(e.message.contains("--ca-bundle"), e.message)
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 3, "\(service): not retried as if transient")
            let stats = try await client.stats()
            XCTAssertEqual(stats.backendRequests.reduce(0) { $0 + $1.retries }, 0, "\(service): no retries")
            client.connection.close()
        }
    }

    func testNoVerifyIsAWarningAndWorks() async throws {
        let daemon = try daemon("wrong_host", arguments: ["--no-verify-tls"])
        try await roundTrip(daemon)
        let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("TLS certificates of S3 endpoints are NOT verified"), log)
        let status = try CommandRunner(socket: daemon.socket).run(["status"])
        XCTAssertTrue(status.text.contains("TLS certificates NOT verified (--no-verify-tls)"), status.text)
    }

    /// Runs `body` with a CONNECT/absolute-URI proxy on 127.0.0.1 (Tests/Support/connect_proxy.py);
    /// `body` gets its URL and a reader of the request lines it has seen so far.
    func withProxy(_ body: (String, () -> [String]) async throws -> Void) async throws {
        let proxy = try SupportScript("connect_proxy.py", arguments: [rigDirectory + "/proxy.port", rigDirectory + "/proxy.log"],
                                      portFile: rigDirectory + "/proxy.port")
        defer { proxy.stop() }
        let port = proxy.port
        try await body("http://127.0.0.1:\(port)") {
            ((try? String(contentsOfFile: self.rigDirectory + "/proxy.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    func testProxiesAreUsedAsTheEnvironmentSaysAndNoProxyBypassesThem() async throws {
        try await withProxy { proxyURL, seen in
            try await roundTrip(try daemon("good", arguments: ["--ca-bundle", ca], environment: ["HTTPS_PROXY": proxyURL]))
            XCTAssertTrue(seen().contains("CONNECT 127.0.0.1:\(ports["good"]!) HTTP/1.1"), "\(seen())")
            let before = seen().count
            try await roundTrip(try daemon("good", arguments: ["--ca-bundle", ca],
                                           environment: ["HTTPS_PROXY": proxyURL, "NO_PROXY": "localhost,127.0.0.1"]))
            XCTAssertEqual(seen().count, before, "NO_PROXY: reached directly")
            // Upper-case HTTP_PROXY for an http endpoint, as botocore reads it (libcurl alone would not).
            let plain = try XCTUnwrap(ProcessInfo.processInfo.environment["JOBSTORE_TEST_S3_ENDPOINT"])
            let env = ProcessInfo.processInfo.environment
            let direct = try DaemonProcess(extraArguments: ["--endpoint", plain],
                                           environment: ["AWS_ACCESS_KEY_ID": env["JOBSTORE_TEST_S3_ACCESS_KEY"] ?? "",
                                                         "AWS_SECRET_ACCESS_KEY": env["JOBSTORE_TEST_S3_SECRET_KEY"] ?? "",
                                                         "HTTP_PROXY": proxyURL])
            try await roundTrip(direct)
            XCTAssertTrue(seen().dropFirst(before).contains { $0.contains(" \(plain)/") }, "\(seen())")
            let report = Process()
            report.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
            report.arguments = ["--print-config"]
            report.environment = ["HTTPS_PROXY": "http://user:pw@proxy.example:3128", "NO_PROXY": "10.0.0.0/8", "HOME": rigDirectory]
            let out = Pipe()
            report.standardOutput = out
            try report.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            report.waitUntilExit()
            XCTAssertTrue(text.contains("# proxies: https http://****@proxy.example:3128, http none, no_proxy 10.0.0.0/8"), text)
            XCTAssertFalse(text.contains("pw@"), "a proxy password is not shown")
        }
    }

    /// One pool for the node: a worker that connects later sends its requests on connections
    /// the session has open, and pays no TLS handshake (Toil's boto3 pays one per process).
    func testANewWorkerCostsNoTLSHandshake() async throws {
        let daemon = try daemon("good", arguments: ["--ca-bundle", ca])
        let first = try daemon.connect()
        let locator = "aws:us-east-1:jobstore-tls-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await first.initialize(StoreRequest(locator: locator))
        _ = try await first.createJob(JobBody(locator: locator, jobId: "j0", body: [1]))
        let firstStats = try await first.stats()
        let before = try XCTUnwrap(firstStats.s3Session)
        XCTAssertGreaterThan(before.tlsHandshakes, 0, "the first requests opened a connection")
        XCTAssertEqual(before.tlsHandshakes, before.connectionsOpened, "https: a handshake per connection")
        first.connection.close()
        for worker in 1...3 {  // three workers, one after another, as a batch system starts them
            let client = try daemon.connect()
            _ = try await client.createJob(JobBody(locator: locator, jobId: "j\(worker)", body: [UInt8(worker)]))
            _ = try await client.loadJob(JobRequest(locator: locator, jobId: "j\(worker)"))
            _ = try await client.upload(WriteFileRequest(locator: locator, basename: "w\(worker)"), pattern(1000))
            client.connection.close()
        }
        let client = try daemon.connect()
        defer { client.connection.close() }
        let lastStats = try await client.stats()
        let after = try XCTUnwrap(lastStats.s3Session)
        XCTAssertEqual(after.tlsHandshakes, before.tlsHandshakes, "no handshake for a new worker")
        XCTAssertGreaterThan(after.requestsOnOpenConnections, before.requestsOnOpenConnections)
        XCTAssertEqual(after.caBundle, ca)
        _ = try await client.destroy(StoreRequest(locator: locator))
        let status = try CommandRunner(socket: daemon.socket).run(["status"])
        XCTAssertTrue(status.text.contains("TLS handshakes") && status.text.contains("TLS verified against \(ca)"), status.text)
    }

    /// Connections the pool opens later (parallel parts of a large upload) resume the TLS
    /// session of the first rather than making full handshakes (libcurl's share interface).
    func testConnectionsOpenedLaterResumeTheTLSSession() async throws {
        let daemon = try daemon("good", arguments: ["--ca-bundle", ca, "--part-concurrency", "4"])
        let client = try daemon.connect()
        defer { client.connection.close() }
        let locator = "aws:us-east-1:jobstore-tls-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator))
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j", body: [1]))  // one connection, one session
        _ = try await client.upload(WriteFileRequest(locator: locator, basename: "big"), pattern(24 << 20, seed: 2), chunk: 1 << 20)
        let stats = try await client.stats()
        let session = try XCTUnwrap(stats.s3Session)
        XCTAssertGreaterThan(session.connectionsOpened, 1, "parallel parts opened more connections")
        XCTAssertGreaterThan(session.tlsSessionsResumed, 0, "\(session)")
        XCTAssertLessThan(session.tlsSessionsResumed, session.tlsHandshakes, "the first handshake is a full one")
        _ = try await client.destroy(StoreRequest(locator: locator))
    }

    /// `jobstored --check-endpoint`: one line saying whether TLS, credentials and a listing work.
    func testCheckEndpointSaysInOneLineWhatWorks() throws {
        func check(_ arguments: [String], secret: String? = nil) throws -> (Int32, String) {
            let env = ProcessInfo.processInfo.environment
            let p = Process()
            p.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
            p.arguments = ["--check-endpoint", "--socket", rigDirectory + "/check.sock"] + arguments
            p.environment = ["HOME": rigDirectory, "AWS_EC2_METADATA_DISABLED": "true", "JOBSTORED_CONFIG": "/dev/null",
                             "AWS_CONFIG_FILE": rigDirectory + "/none", "AWS_SHARED_CREDENTIALS_FILE": rigDirectory + "/none",
                             "AWS_ACCESS_KEY_ID": env["JOBSTORE_TEST_S3_ACCESS_KEY"] ?? "",
                             "AWS_SECRET_ACCESS_KEY": secret ?? env["JOBSTORE_TEST_S3_SECRET_KEY"] ?? ""]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let endpoint = "https://127.0.0.1:\(ports["good"]!)"
        let good = try check(["--endpoint", endpoint, "--ca-bundle", ca])
        XCTAssertEqual(good.0, 0, good.1)
        XCTAssertTrue(good.1.hasPrefix("\(endpoint): TLS ok (verified against \(ca)"), good.1)
        XCTAssertTrue(good.1.contains("credentials ok") && good.1.contains("ListBuckets ok"), good.1)
        XCTAssertEqual(good.1.split(separator: "\n").count, 1, "one line")
        let untrusted = try check(["--endpoint", endpoint])
        XCTAssertEqual(untrusted.0, 1)
        XCTAssertTrue(untrusted.1.contains("TLS failed") && untrusted.1.contains("unable to get local issuer certificate"), untrusted.1)
        let refused = try check(["--endpoint", endpoint, "--ca-bundle", ca], secret: "not-the-secret")
        XCTAssertEqual(refused.0, 1)
        XCTAssertTrue(refused.1.contains("TLS ok") && refused.1.contains("credentials refused"), refused.1)
        XCTAssertFalse(refused.1.contains("not-the-secret"), "the secret is not printed")
    }

    func testAnUnreadableCABundleIsAUsageError() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
        p.arguments = ["--ca-bundle", rigDirectory + "/missing.pem", "--socket", rigDirectory + "/x.sock"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 64)
    }
}
