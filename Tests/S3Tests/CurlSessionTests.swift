import Foundation
@testable import S3
import XCTest

/// The session's callers drive its one multi handle in turn (leader/follower): these check,
/// against a real HTTP server on 127.0.0.1, that every caller gets its answer whichever of them
/// drives, in particular when the driver's own exchange ends first and it must hand over.
final class CurlSessionTests: XCTestCase {
    private var server: Process!
    private var port = 0

    /// A threaded HTTP server: `/delay/MS` answers after MS milliseconds with the path as body.
    override func setUpWithError() throws {
        let script = """
        import http.server, socketserver, sys, time
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                if self.path.startswith("/delay/"):
                    time.sleep(int(self.path.split("/")[2].split("?")[0]) / 1000)
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Echo", "  spaced   value  ")
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass
        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
        s = S(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        server = process
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(port, 0, "the test server did not start")
    }

    override func tearDown() {
        server?.terminate()
        server?.waitUntilExit()
    }

    private func get(_ session: CurlSession, _ path: String) throws -> String {
        let response = try session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:\(port)\(path)"))
        XCTAssertEqual(response.status, 200)
        return String(decoding: response.body, as: UTF8.self)
    }

    /// Runs `work` on a thread of its own; the result arrives through the expectation.
    private func onThread(_ work: @escaping @Sendable () -> Void) {
        let thread = Thread(block: work)
        thread.start()
    }

    func testHeadersAreParsedLowerCasedAndTrimmed() throws {
        let session = CurlSession()
        let response = try session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:\(port)/h"))
        XCTAssertEqual(response.headers["x-echo"], "spaced   value")
        XCTAssertEqual(response.headers["content-length"], "2")
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "/h")
    }

    /// The first caller drives; its exchange ends long before the second's, so it must hand the
    /// session over or the second caller waits forever.
    func testTheDriverHandsOverWhenItsOwnExchangeEndsFirst() throws {
        let session = CurlSession()
        let port = self.port
        let slow = expectation(description: "the slow exchange answered")
        let fast = expectation(description: "the fast exchange answered")
        onThread {
            if let r = try? session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:\(port)/delay/300")),
               String(decoding: r.body, as: UTF8.self) == "/delay/300" { fast.fulfill() }
        }
        Thread.sleep(forTimeInterval: 0.05)  // the first caller is driving by now
        onThread {
            if let r = try? session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:\(port)/delay/1200")),
               String(decoding: r.body, as: UTF8.self) == "/delay/1200" { slow.fulfill() }
        }
        wait(for: [fast, slow], timeout: 10)
        // And the session is free again for a lone caller.
        let after = expectation(description: "a later lone exchange answered")
        onThread {
            if let r = try? session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:\(port)/after")),
               String(decoding: r.body, as: UTF8.self) == "/after" { after.fulfill() }
        }
        wait(for: [after], timeout: 10)
    }

    /// Many callers at once, with answers in every order: each gets its own.
    func testConcurrentCallersEachGetTheirOwnAnswer() throws {
        let session = CurlSession(maxConnections: 8)
        let port = self.port
        let count = 64
        let answered = expectation(description: "every exchange answered with its own body")
        answered.expectedFulfillmentCount = count
        for i in 0..<count {
            onThread {
                let path = "/delay/\((i * 37) % 50)?n=\(i)"
                if let r = try? session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:\(port)\(path)")),
                   String(decoding: r.body, as: UTF8.self) == path { answered.fulfill() }
            }
        }
        wait(for: [answered], timeout: 30)
    }

    func testATransportErrorReachesItsCallerAndTheNextCallStillWorks() throws {
        let session = CurlSession()
        // A closed port: connection refused.
        let closed = try? session.perform(CurlSession.Request(method: "GET", url: "http://127.0.0.1:1/"))
        XCTAssertNil(closed)
        XCTAssertEqual(try get(session, "/ok"), "/ok")
    }
}
