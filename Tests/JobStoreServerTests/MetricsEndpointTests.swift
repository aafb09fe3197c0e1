import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// `jobstored --metrics`: scrapes a daemon on an aws: store on SeaweedFS before and after
/// traffic and checks the counters and histograms moved by what the traffic did.
final class MetricsEndpointTests: XCTestCase {
    /// A port free now on 127.0.0.1 (the kernel's choice, released for the daemon to take).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw PlainHTTP.Failure(description: "no free port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// The samples of a page: `name{labels}` → value. Checks the page's shape on the way: every
    /// sample belongs to a family declared with HELP and TYPE before it.
    static func samples(_ page: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Double] {
        var declared = Set<String>()
        var values: [String: Double] = [:]
        for text in page.split(separator: "\n") {
            if text.hasPrefix("# TYPE ") {
                declared.insert(String(text.split(separator: " ")[2]))
                continue
            }
            if text.hasPrefix("#") { continue }
            guard let space = text.lastIndex(of: " "), let value = Double(text[text.index(after: space)...]) ?? (text.hasSuffix("+Inf") ? .infinity : nil) else {
                XCTFail("not a sample line: \(text)", file: file, line: line)
                continue
            }
            let series = String(text[..<space])
            let name = String(series.prefix { $0 != "{" })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { n, suffix in
                n.hasSuffix(suffix) && declared.contains(String(n.dropLast(suffix.count))) ? String(n.dropLast(suffix.count)) : n
            }
            XCTAssertTrue(declared.contains(family), "\(name) has no # TYPE", file: file, line: line)
            XCTAssertTrue(name.hasPrefix("jobstored_"), name, file: file, line: line)
            values[series] = value
        }
        return values
    }

    func testCountersAndHistogramsMoveWithTraffic() async throws {
        let port = try Self.freePort()
        let daemon = try DaemonProcess.withS3(extraArguments: ["--metrics", "127.0.0.1:\(port)", "--part-size", "5MiB"])
        defer { daemon.stop() }
        let metrics = URL(string: "http://127.0.0.1:\(port)/metrics")!
        // The socket answers before every part of the daemon is up: wait for a call, then
        // for the endpoint.
        let client = try daemon.connect()
        defer { client.connection.close() }
        _ = try await client.ping()
        var before = try? PlainHTTP.get(metrics)
        for _ in 0..<100 where before == nil {
            usleep(50_000)
            before = try? PlainHTTP.get(metrics)
        }
        let first = try XCTUnwrap(before, "the metrics endpoint answers")
        let a = Self.samples(first.text)
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertEqual(a["jobstored_build_info{version=\"\(ReleaseVersionProbe.version)\"}"], 1)
        XCTAssertEqual(a["jobstored_rpc_calls_total{method=\"WriteFileStream\"}"], 0)
        let locator = "aws:us-east-1:metrics-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator))
        let bytes = pattern(6 << 20)
        let id = try await client.upload(WriteFileRequest(locator: locator), bytes).fileId
        for _ in 0..<2 {
            let read = try await client.download(locator, id)
            XCTAssertEqual(read, bytes)
        }
        await assertFails(.notFound) { try await client.loadJob(JobRequest(locator: locator, jobId: "absent")) }

        let b = Self.samples(try PlainHTTP.get(metrics).text)
        func moved(_ series: String) -> Double { (b[series] ?? 0) - (a[series] ?? 0) }
        XCTAssertEqual(moved("jobstored_rpc_calls_total{method=\"WriteFileStream\"}"), 1)
        XCTAssertEqual(moved("jobstored_rpc_calls_total{method=\"ReadFileStream\"}"), 2)
        XCTAssertEqual(moved("jobstored_rpc_errors_total{method=\"LoadJob\"}"), 1)
        XCTAssertEqual(b["jobstored_rpc_duration_seconds_count{method=\"ReadFileStream\"}"], 2)
        XCTAssertEqual(b["jobstored_rpc_duration_seconds_bucket{method=\"ReadFileStream\",le=\"+Inf\"}"], 2)
        XCTAssertGreaterThan(b["jobstored_rpc_duration_seconds_sum{method=\"WriteFileStream\"}"] ?? 0, 0)
        XCTAssertGreaterThanOrEqual(moved("jobstored_socket_received_bytes_total"), Double(bytes.count))
        XCTAssertGreaterThanOrEqual(moved("jobstored_socket_sent_bytes_total"), Double(2 * bytes.count))
        XCTAssertEqual(b["jobstored_connections"], 1)
        // 6 MiB in 5-MiB parts: a multipart upload on S3.
        XCTAssertEqual(moved("jobstored_s3_requests_total{operation=\"CompleteMultipartUpload\"}"), 1)
        XCTAssertGreaterThanOrEqual(moved("jobstored_s3_sent_bytes_total{operation=\"UploadPart\"}"), Double(bytes.count))
        XCTAssertGreaterThanOrEqual(b["jobstored_s3_request_duration_seconds_count{operation=\"UploadPart\"}"] ?? 0, 2)
        // Written through to the cache, then read twice from it with a 304 each time.
        XCTAssertEqual(moved("jobstored_cache_written_through_total"), 1)
        XCTAssertEqual(moved("jobstored_cache_hits_total"), 2)
        XCTAssertEqual(moved("jobstored_s3_not_modified_total{operation=\"GetObject\"}"), 2)
        XCTAssertEqual(b["jobstored_cache_entries"], 1)
        XCTAssertEqual(b["jobstored_cache_size_bytes"], Double(bytes.count))
        for (series, value) in b where series.hasPrefix("jobstored_rpc_duration_seconds_bucket{method=\"ReadFileStream\"") {
            XCTAssertLessThanOrEqual(value, 2, series)
        }

        XCTAssertEqual(try PlainHTTP.get(URL(string: "http://127.0.0.1:\(port)/")!).status, 404)
        _ = try await client.destroy(StoreRequest(locator: locator))
    }
}

/// The version the daemon reports, as the tests see it (the Stats answer of a fresh daemon
/// would do as well; the build's constant is simpler).
enum ReleaseVersionProbe {
    static var version: String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
        p.arguments = ["--version"]
        let out = Pipe()
        p.standardOutput = out
        try? p.run()
        p.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
