import Metrics
import XCTest

final class LatencyHistogramTests: XCTestCase {
    func testDurationsLandInTheFirstBucketWhoseBoundHoldsThem() {
        var h = LatencyHistogram()
        h.record(seconds: 0.00005)   // ≤ 0.1 ms
        h.record(seconds: 0.0001)    // exactly on a bound: that bucket (le is inclusive)
        h.record(micros: 3_000)      // ≤ 5 ms
        h.record(seconds: 100)       // above every bound
        XCTAssertEqual(h.count, 4)
        XCTAssertEqual(h.counts[0], 2)
        XCTAssertEqual(h.counts[LatencyHistogram.bounds.firstIndex(of: 0.005)!], 1)
        XCTAssertEqual(h.counts.last, 1)
        XCTAssertEqual(h.sum, 100.00315, accuracy: 1e-9)
        let cumulative = h.cumulative
        XCTAssertEqual(cumulative.count, LatencyHistogram.bounds.count + 1)
        XCTAssertEqual(cumulative.last, 4)
        XCTAssertEqual(cumulative, cumulative.sorted(), "cumulative counts never decrease")
    }
}

final class PrometheusTextTests: XCTestCase {
    func testFamiliesAreDeclaredOnceAndLabelsEscaped() {
        var page = PrometheusText()
        page.family("x_total", .counter, help: "Things\\counted\nhere.")
        page.sample("x_total", [("method", "a\"b\\c\nd")], UInt64(3))
        page.family("x_total", .counter, help: "again")
        page.sample("x_total", [("method", "e")], UInt64(4))
        page.family("y_seconds", .gauge, help: "A gauge.")
        page.sample("y_seconds", [], 0.25)
        XCTAssertEqual(page.text, """
        # HELP x_total Things\\\\counted\\nhere.
        # TYPE x_total counter
        x_total{method="a\\"b\\\\c\\nd"} 3
        x_total{method="e"} 4
        # HELP y_seconds A gauge.
        # TYPE y_seconds gauge
        y_seconds 0.25

        """)
    }

    func testHistogramSeries() {
        var h = LatencyHistogram()
        h.record(seconds: 0.002)
        h.record(seconds: 7)
        var page = PrometheusText()
        page.family("d_seconds", .histogram, help: "Durations.")
        page.histogram("d_seconds", [("op", "Get")], h)
        let lines = page.text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("d_seconds_bucket{op=\"Get\",le=\"0.001\"} 0"))
        XCTAssertTrue(lines.contains("d_seconds_bucket{op=\"Get\",le=\"0.0025\"} 1"))
        XCTAssertTrue(lines.contains("d_seconds_bucket{op=\"Get\",le=\"5\"} 1"))
        XCTAssertTrue(lines.contains("d_seconds_bucket{op=\"Get\",le=\"10\"} 2"))
        XCTAssertTrue(lines.contains("d_seconds_bucket{op=\"Get\",le=\"+Inf\"} 2"))
        XCTAssertTrue(lines.contains("d_seconds_sum{op=\"Get\"} 7.002"))
        XCTAssertTrue(lines.contains("d_seconds_count{op=\"Get\"} 2"))
    }
}

final class MetricsHTTPServerTests: XCTestCase {
    func testAddressesParse() {
        XCTAssertTrue(MetricsHTTPServer.parseAddress("127.0.0.1:9464")! == ("127.0.0.1", 9464))
        XCTAssertTrue(MetricsHTTPServer.parseAddress(":9464")! == ("127.0.0.1", 9464))
        XCTAssertTrue(MetricsHTTPServer.parseAddress("[::1]:80")! == ("::1", 80))
        XCTAssertNil(MetricsHTTPServer.parseAddress("localhost"))
        XCTAssertNil(MetricsHTTPServer.parseAddress("127.0.0.1:99999"))
        XCTAssertThrowsError(try MetricsHTTPServer(host: "not-an-address", port: 0, render: { "" }))
    }

    /// A real socket on 127.0.0.1: /metrics answers the page; other paths 404; other methods
    /// 405; a client that sends half a request and stalls does not hold up the next scrape.
    func testServesTheRenderedPageOverHTTP() throws {
        let counter = Counter()
        let server = try MetricsHTTPServer(host: "127.0.0.1", port: 0, render: { "scrape_total \(counter.next())\n" })
        server.start()
        defer { server.stop() }
        XCTAssertGreaterThan(server.port, 0)

        let first = try exchange(server.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(first.hasPrefix("HTTP/1.1 200 OK\r\n"), first)
        XCTAssertTrue(first.contains("Content-Type: text/plain; version=0.0.4"), first)
        XCTAssertTrue(first.hasSuffix("\r\n\r\nscrape_total 1\n"), first)
        XCTAssertTrue(try exchange(server.port, "GET /metrics HTTP/1.1\r\n\r\n").hasSuffix("scrape_total 2\n"))
        XCTAssertTrue(try exchange(server.port, "GET / HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        XCTAssertTrue(try exchange(server.port, "POST /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 405"))
        let head = try exchange(server.port, "HEAD /metrics HTTP/1.1\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200") && head.hasSuffix("\r\n\r\n"), head)

        let stalled = try connect(server.port)
        defer { close(stalled) }
        _ = "GET /met".withCString { send(stalled, $0, strlen($0), 0) }
        let start = Date()
        XCTAssertTrue(try exchange(server.port, "GET /metrics HTTP/1.1\r\n\r\n").contains("scrape_total"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 4, "a stalled client does not hold up another scrape")
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    }

    func connect(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(rc, 0)
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func exchange(_ port: UInt16, _ request: String) throws -> String {
        let fd = try connect(port)
        defer { close(fd) }
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
