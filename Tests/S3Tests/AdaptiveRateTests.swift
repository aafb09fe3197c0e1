import Foundation
import S3
import XCTest

/// The session-wide pace: throttles widen the gap between request starts for every caller,
/// quiet periods narrow it again until it is gone.
final class AdaptiveRateTests: XCTestCase {
    func testThrottlesSlowEveryCallerAndQuietRestores() {
        let clock = Clock(100)
        let rate = AdaptiveRate(minimumGap: 0.01, maximumGap: 0.08, quietPeriod: 5, recovery: 0.5, now: { clock.now })
        XCTAssertEqual(rate.reserve(), 0, "unthrottled: no wait")
        rate.throttled()
        XCTAssertEqual(rate.currentGap, 0.01)
        for _ in 0..<5 { rate.throttled() }
        XCTAssertEqual(rate.currentGap, 0.08, "doubling stops at the maximum")
        // Ten callers at the same instant are spaced out one gap apart.
        let waits = (0..<10).map { _ in rate.reserve() }
        for (i, w) in waits.enumerated() { XCTAssertEqual(w, Double(i) * 0.08, accuracy: 1e-9) }
        rate.succeeded()
        XCTAssertEqual(rate.currentGap, 0.08, "no easing within the quiet period")
        clock.now += 5
        rate.succeeded()
        XCTAssertEqual(rate.currentGap, 0.04)
        rate.succeeded()
        XCTAssertEqual(rate.currentGap, 0.02, "after the quiet period every success narrows the gap")
        rate.throttled()
        rate.succeeded()
        XCTAssertEqual(rate.currentGap, 0.04, "a new throttle starts a new quiet period")
        clock.now += 5
        for _ in 0..<3 { rate.succeeded() }
        XCTAssertEqual(rate.currentGap, 0, "back to full speed")
    }

    /// SlowDown answers from a server slow the client that got them.
    func testSlowDownAnswersWidenTheClientsGap() throws {
        let slowDown = "HTTP/1.1 503 Slow Down\r\nContent-Length: 67\r\n\r\n<Error><Code>SlowDown</Code><Message>Reduce rate.</Message></Error>"
        let server = try ScriptedHTTPServer(script: [slowDown, slowDown])
        let credentials = AWSCredentials(accessKeyID: "k", secretAccessKey: "s")
        let client = S3Client(endpoint: .init(url: URL(string: "http://127.0.0.1:\(server.port)")!, region: "us-east-1"),
                              session: CurlSession(), rate: AdaptiveRate(minimumGap: 0.01, quietPeriod: 60),
                              credentials: { credentials })
        client.backoffBase = 0.001
        XCTAssertEqual(try client.send("GET", bucket: "b", key: "k").status, 200)
        XCTAssertEqual(server.requestCount, 3)
        XCTAssertEqual(client.rate.currentGap, 0.02, accuracy: 1e-9)
    }
}
