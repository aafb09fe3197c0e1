import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// The benchmarks' WAN relay (Tests/Support/wan_relay.py) between a daemon and the real S3
/// server: it must relay every byte untouched, add its delay in each direction, and count the
/// requests as the daemon itself counts them (the benchmark's figures for Toil's own store come
/// from the relay alone).
final class WANRelayTests: XCTestCase {
    private func startRelay(_ arguments: [String]) throws -> SupportScript {
        guard let endpoint = ProcessInfo.processInfo.environment["JOBSTORE_TEST_S3_ENDPOINT"], let url = URL(string: endpoint),
              let host = url.host, let port = url.port else {
            XCTFail("JOBSTORE_TEST_S3_* not set: run eval \"$(tools/dev-s3 start)\" first (tools/test does)")
            throw JobStoreError(.unavailable, "no test S3 server")
        }
        let portFile = NSTemporaryDirectory() + "wan-relay-\(UUID().uuidString.prefix(8)).port"
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        return try SupportScript("wan_relay.py", arguments: ["\(host):\(port)", "--port-file", portFile] + arguments, portFile: portFile)
    }

    private func counts(_ relay: SupportScript) throws -> [String: Any] {
        let response = try PlainHTTP.get(URL(string: "http://127.0.0.1:\(relay.otherPorts[0])/counts")!)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
    }

    func testTheRelayCountsEveryRequestAsTheDaemonDoes() async throws {
        let relay = try startRelay(["--http"])
        defer { relay.stop() }
        let daemon = try DaemonProcess.withS3(endpoint: "http://127.0.0.1:\(relay.port)")
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        let locator = "aws:us-east-1:jobstore-relay-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator))
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j", body: Array(repeating: 7, count: 3000)))
        let body = try await client.loadJob(JobRequest(locator: locator, jobId: "j")).body
        XCTAssertEqual(body, Array(repeating: 7, count: 3000))
        _ = try await client.jobExists(JobRequest(locator: locator, jobId: "missing"))
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("a log".utf8)))
        _ = try await client.readLogs(ReadLogsRequest(locator: locator))
        _ = try await client.destroy(StoreRequest(locator: locator))
        let stats = try await client.stats()
        let counted = try counts(relay)
        let requests = try XCTUnwrap(counted["requests"] as? [String: Int])
        var daemonCounts: [String: Int] = [:]
        for row in stats.backendRequests where row.requests > 0 { daemonCounts[row.operation] = Int(row.requests) }
        XCTAssertEqual(requests, daemonCounts, "the relay names and counts each request as the daemon does")
        XCTAssertGreaterThan(requests.values.reduce(0, +), 10)
    }

    func testTheRelayHoldsEachSegmentInEachDirection() async throws {
        let relay = try startRelay(["--delay-ms", "40"])
        defer { relay.stop() }
        let daemon = try DaemonProcess.withS3(endpoint: "http://127.0.0.1:\(relay.port)")
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        let locator = "aws:us-east-1:jobstore-delay-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator))
        // A job load is one GET on a connection already open: one round trip, 2 × 40 ms at least.
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j", body: [1]))
        let started = Date()
        _ = try await client.loadJob(JobRequest(locator: locator, jobId: "j"))
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.08, "the delay is added each way")
        // Bytes cross untouched: a 6 MiB job (the daemon checks every byte's SHA-256).
        let big = (0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        _ = try await client.updateJob(JobBody(locator: locator, jobId: "j", body: big))
        let back = try await client.loadJob(JobRequest(locator: locator, jobId: "j")).body
        XCTAssertEqual(back, big)
        _ = try await client.destroy(StoreRequest(locator: locator))
        let counted = try counts(relay)
        XCTAssertGreaterThan(try XCTUnwrap(counted["bytes_up"] as? Int), 6 << 20)
        XCTAssertGreaterThan(try XCTUnwrap(counted["bytes_down"] as? Int), 6 << 20)
    }
}
