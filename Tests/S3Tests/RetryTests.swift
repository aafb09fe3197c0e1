import Foundation
import S3
import XCTest

/// A scripted HTTP server on 127.0.0.1: answers each request with the next canned response.
final class ScriptedHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var script: [String]
    private(set) var requests: [String] = []
    /// Answers chosen by the request's head before the script is consulted (nil: the script's).
    private let route: @Sendable (String) -> String?
    /// A script entry that answers nothing at all: a stalled server.
    static let stall = "STALL"

    /// `port` 0: any free port; another: that one (a server coming back where one was refused).
    init(script: [String], port fixedPort: UInt16 = 0, route: @escaping @Sendable (String) -> String? = { _ in nil }) throws {
        self.script = script
        self.route = route
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = fixedPort.bigEndian
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        let bound0 = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound0 == 0 else {
            close(listener)
            throw NSError(domain: "ScriptedHTTPServer", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: "bind 127.0.0.1:\(fixedPort) failed"])
        }
        listen(listener, 16)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = UInt16(bigEndian: bound.sin_port)
        Thread { [self] in serve() }.start()
    }

    deinit { close(listener) }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            Thread { [self] in handle(fd) }.start()
        }
    }

    private func handle(_ fd: Int32) {
        defer { close(fd) }
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            while let end = headerEnd(pending) {
                let head = String(decoding: pending[0..<end], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                guard pending.count >= end + 4 + length else { break }
                pending.removeFirst(end + 4 + length)
                lock.lock()
                requests.append(head)
                let reply = route(head) ?? (script.isEmpty ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" : script.removeFirst())
                lock.unlock()
                if reply == Self.stall {  // say nothing until the client gives up
                    while read(fd, &buffer, buffer.count) > 0 {}
                    return
                }
                _ = reply.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
            }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return }
            pending += buffer[0..<n]
        }
    }

    private func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i }
        return nil
    }

    var requestCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return requests.count
    }
}

final class RetryTests: XCTestCase {
    static let session = CurlSession()
    let credentials = AWSCredentials(accessKeyID: "k", secretAccessKey: "s")

    private func client(_ server: ScriptedHTTPServer, attempts: Int = 6) -> S3Client {
        let credentials = self.credentials
        let client = S3Client(endpoint: .init(url: URL(string: "http://127.0.0.1:\(server.port)")!, region: "us-east-1"),
                              session: Self.session, credentials: { credentials })
        client.maxAttempts = attempts
        client.backoffBase = 0.01
        return client
    }

    func testSlowDownAndServerErrorsAreRetried() throws {
        let slowDown = "HTTP/1.1 503 Slow Down\r\nRetry-After: 0\r\nContent-Length: 60\r\n\r\n<Error><Code>SlowDown</Code><Message>slow</Message></Error>  "
        let server = try ScriptedHTTPServer(script: [slowDown, "HTTP/1.1 500 Internal\r\nContent-Length: 0\r\n\r\n"])
        let response = try client(server).send("PUT", bucket: "b", key: "k", body: [1, 2, 3])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(server.requestCount, 3)
    }

    /// A server that stops answering is given up on after the stall time and the request retried.
    func testAStalledTransferIsCancelledAndRetried() throws {
        let server = try ScriptedHTTPServer(script: [ScriptedHTTPServer.stall])
        let credentials = self.credentials
        let client = S3Client(endpoint: .init(url: URL(string: "http://127.0.0.1:\(server.port)")!, region: "us-east-1"),
                              session: CurlSession(stallSeconds: 1), credentials: { credentials })
        client.backoffBase = 0.01
        let started = Date()
        XCTAssertEqual(try client.send("GET", bucket: "b", key: "k").status, 200)
        XCTAssertEqual(server.requestCount, 2)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testTheRetryBudgetEnds() throws {
        let busy = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
        let server = try ScriptedHTTPServer(script: Array(repeating: busy, count: 10))
        XCTAssertThrowsError(try client(server, attempts: 3).send("GET", bucket: "b", key: "k")) {
            XCTAssertEqual(($0 as? S3Client.S3Error)?.status, 503)
        }
        XCTAssertEqual(server.requestCount, 3)
    }

    func testClientErrorsAreNotRetried() throws {
        let denied = "HTTP/1.1 403 Forbidden\r\nContent-Length: 58\r\n\r\n<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
        let server = try ScriptedHTTPServer(script: [denied])
        XCTAssertThrowsError(try client(server).send("GET", bucket: "b", key: "k")) {
            XCTAssertEqual(($0 as? S3Client.S3Error)?.code, "AccessDenied")
        }
        XCTAssertEqual(server.requestCount, 1)
    }
}
