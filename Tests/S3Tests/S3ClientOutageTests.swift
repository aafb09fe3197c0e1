import Foundation
import S3
import XCTest

/// Values gathered from several threads.
final class Tally<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var all: [Value] = []
    func add(_ v: Value) { lock.lock(); all.append(v); lock.unlock() }
    var values: [Value] { lock.lock(); defer { lock.unlock() }; return all }
}

/// S3Client through an outage, against real sockets: a port that refuses and later answers, a
/// gateway answering 502 to every attempt, and answers that are not outages.
final class S3ClientOutageTests: XCTestCase {
    let credentials = AWSCredentials(accessKeyID: "k", secretAccessKey: "s")
    static let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    /// A port nothing listens on (bound, then closed).
    func refusingPort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        close(fd)
        return UInt16(bigEndian: addr.sin_port)
    }

    func client(port: UInt16, tolerance: Double, attempts: Int = 6) -> S3Client {
        let credentials = self.credentials
        let url = URL(string: "http://127.0.0.1:\(port)")!
        let reachability = S3Reachability(endpoint: url.absoluteString, tolerance: tolerance, probeBackoffBase: 0.05, probeBackoffCap: 0.2)
        let client = S3Client(endpoint: .init(url: url, region: "us-east-1"), session: CurlSession(), reachability: reachability,
                              credentials: { credentials })
        client.maxAttempts = attempts
        client.backoffBase = 0.01
        return client
    }

    func testCallsWaitThroughARefusedPortUntilItAnswers() throws {
        let port = refusingPort()
        let client = client(port: port, tolerance: 20)
        let group = DispatchGroup()
        let results = Tally<Int>()
        for i in 0..<8 {
            group.enter()
            Thread {
                let status = (try? client.send("GET", bucket: "b", key: "k\(i)").status) ?? -1
                results.add(status)
                group.leave()
            }.start()
        }
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertTrue(client.reachability.isUnreachable)
        XCTAssertEqual(client.reachability.snapshot.callsWaiting, 8, "every call waits")
        let attemptsDuringOutage = client.counters.snapshot.values.reduce(0) { $0 + $1.requests }
        // One probe at a time, spaced by a backoff of at least 25 ms: far fewer than 8 callers retrying on their own.
        XCTAssertLessThan(attemptsDuringOutage, 1 + 8 + 1500 / 25)
        let server = try ScriptedHTTPServer(script: [], port: port)
        XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(results.values, Array(repeating: 200, count: 8))
        XCTAssertEqual(server.requestCount, 8, "each call sent once the server answered")
        let s = client.reachability.snapshot
        XCTAssertEqual(s.outages, 1)
        XCTAssertEqual(s.callsWaited, 8)
        XCTAssertEqual(s.callsFailed, 0)
        XCTAssertGreaterThanOrEqual(s.longestWaitSeconds, 1.4)
        XCTAssertNil(s.unreachableSince)
    }

    func testAnOutageLongerThanTheToleranceFailsWithinIt() throws {
        let client = client(port: refusingPort(), tolerance: 1.5)
        let started = Date()
        XCTAssertThrowsError(try client.send("GET", bucket: "b", key: "k")) { error in
            XCTAssertTrue(error is S3Unreachable, "\(error)")
            XCTAssertTrue("\(error)".contains("Failed to connect") || "\(error)".contains("Couldn't connect"), "\(error)")
        }
        let took = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(took, 1.4)
        XCTAssertLessThan(took, 4.5, "fails within the tolerance and a few seconds")
    }

    func testAGatewayAnsweringEveryAttemptWith502IsAnOutage() throws {
        let gateway = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
        let server = try ScriptedHTTPServer(script: Array(repeating: gateway, count: 9))
        let client = client(port: server.port, tolerance: 20, attempts: 3)
        XCTAssertEqual(try client.send("GET", bucket: "b", key: "k").status, 200)
        XCTAssertEqual(server.requestCount, 10)
        XCTAssertEqual(client.reachability.snapshot.outages, 1, "3 gateway answers in a row began an outage")
        XCTAssertFalse(client.reachability.isUnreachable)
    }

    /// A restarting SeaweedFS answers 500 InternalError for seconds before it serves (seen in CI,
    /// longer than the ordinary attempts): that is an outage to wait through, not a failure.
    func testAServerAnswering500UntilItIsReadyIsAnOutage() throws {
        let body = "<Error><Code>InternalError</Code><Message>We encountered an internal error, please try again.</Message></Error>"
        let unready = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let server = try ScriptedHTTPServer(script: Array(repeating: unready, count: 12))
        let client = client(port: server.port, tolerance: 20, attempts: 3)
        XCTAssertEqual(try client.send("GET", bucket: "b", key: "k").status, 200)
        XCTAssertEqual(server.requestCount, 13)
        let s = client.reachability.snapshot
        XCTAssertEqual(s.outages, 1, "3 answers of 500 in a row began an outage")
        XCTAssertEqual(s.callsFailed, 0)
        XCTAssertFalse(client.reachability.isUnreachable)
    }

    /// One request that keeps failing while others are served does not wait forever: each other
    /// answer ends the outage its failures begin, so it fails after the tolerance, as an S3 error.
    func testARequestAloneAnswered500FailsAfterTheTolerance() throws {
        let body = "<Error><Code>InternalError</Code><Message>bad key</Message></Error>"
        let broken = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let server = try ScriptedHTTPServer(script: []) { head in head.contains("/b/poisoned ") ? broken : nil }
        let client = client(port: server.port, tolerance: 1.5, attempts: 3)
        let stop = Tally<Bool>()
        let others = Thread {
            while stop.values.isEmpty {
                _ = try? client.send("GET", bucket: "b", key: "fine")
                usleep(20_000)
            }
        }
        others.start()
        defer { stop.add(true) }
        let started = Date()
        XCTAssertThrowsError(try client.send("GET", bucket: "b", key: "poisoned")) { error in
            XCTAssertEqual((error as? S3Client.S3Error)?.code, "InternalError", "\(error)")
        }
        let took = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(took, 1.4)
        XCTAssertLessThan(took, 6, "fails after the tolerance, not in a loop")
    }

    func testAnswersThatAreNotOutagesFailAtOnce() throws {
        func answer(_ status: String, _ code: String) -> String {
            let body = "<Error><Code>\(code)</Code><Message>no</Message></Error>"
            return "HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        let answers = [
            (answer("404 Not Found", "NoSuchBucket"), "NoSuchBucket"),
            (answer("403 Forbidden", "AccessDenied"), "AccessDenied"),
            // Signed afresh and sent once more (see S3Client), then it fails: a wrong secret.
            (answer("403 Forbidden", "SignatureDoesNotMatch"), "SignatureDoesNotMatch"),
        ]
        for (answer, code) in answers {
            let server = try ScriptedHTTPServer(script: [answer, answer])
            let client = client(port: server.port, tolerance: 120)
            let started = Date()
            XCTAssertThrowsError(try client.send("GET", bucket: "b", key: "k")) {
                XCTAssertEqual(($0 as? S3Client.S3Error)?.code, code)
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 1)
            XCTAssertEqual(client.reachability.snapshot.outages, 0)
        }
    }

    func testToleranceZeroFailsARefusedPortAfterItsAttempts() throws {
        let client = client(port: refusingPort(), tolerance: 0, attempts: 3)
        XCTAssertThrowsError(try client.send("GET", bucket: "b", key: "k")) {
            XCTAssertEqual(($0 as? CurlSession.TransportError)?.code, 7)
        }
        XCTAssertEqual(client.counters.snapshot.values.reduce(0) { $0 + $1.requests }, 3)
    }
}
