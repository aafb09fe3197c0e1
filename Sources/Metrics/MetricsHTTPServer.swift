import Foundation
import Synchronization
import SystemCall

/// The optional Prometheus endpoint (`jobstored --metrics HOST:PORT`): a minimal HTTP/1.x
/// server answering `GET /metrics` with the page `render` makes.
///
/// Why not an HTTP framework: scrapes come every few seconds from one or two Prometheus
/// servers; a blocking accept loop and a thread per connection (at most 8 at once) is enough
/// and adds no dependency. Requests are read with a 5-s timeout and at most 8 KiB of headers,
/// so a stuck client holds one thread for 5 s and never delays another scrape.
public final class MetricsHTTPServer: Sendable {
    public let host: String
    /// The port bound (the one asked for, or the kernel's choice for 0).
    public let port: UInt16
    private let render: @Sendable () -> String
    /// The listening socket: set once by init, closed by the accept thread when it ends.
    private let fd: Int32
    /// What `active` guards: the connections being served, and whether `stop()` came.
    private struct State {
        var serving = 0
        var stopped = false
    }
    private let active = Mutex(State())
    static let maxConnections = 8

    public init(host: String, port: UInt16, render: @escaping @Sendable () -> String) throws {
        self.host = host
        self.render = render
        var bound: UInt16 = 0
        fd = try Self.listen(host: host, port: port, boundPort: &bound)
        self.port = bound
    }

    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6; a bare `:PORT` means 127.0.0.1).
    public static func parseAddress(_ text: String) -> (host: String, port: UInt16)? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    private static func listen(host: String, port: UInt16, boundPort: inout UInt16) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw MetricsError("--metrics needs a numeric address such as 127.0.0.1:9464, not \(host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MetricsError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw MetricsError("cannot listen on \(host):\(port): \(String(cString: strerror(code)))", addressInUse: code == EADDRINUSE)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) } }
        boundPort = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return fd
    }

    /// Serves on a thread of its own until `stop()`.
    public func start() {
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "jobstored-metrics"
        thread.start()
    }

    /// Stops accepting: the accept thread wakes (shutdown makes accept fail), sees the flag and
    /// closes the socket itself, so no thread ever uses a closed descriptor number.
    public func stop() {
        active.withLock { $0.stopped = true }
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private var isStopped: Bool {
        active.withLock { $0.stopped }
    }

    private func acceptLoop() {
        defer { close(fd) }
        while true {
            let client = SystemCall.retryingInterrupts { accept(fd, nil, nil) }
            if isStopped {
                if client >= 0 { close(client) }
                return
            }
            if client < 0 {
                if errno == ECONNABORTED || errno == EAGAIN || errno == EMFILE || errno == ENFILE {
                    if errno == EMFILE || errno == ENFILE { usleep(10_000) }
                    continue
                }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let admitted = active.withLock { s in
                let admitted = s.serving < Self.maxConnections
                if admitted { s.serving += 1 }
                return admitted
            }
            guard admitted else {
                close(client)
                continue
            }
            let thread = Thread { [self] in
                serve(client)
                close(client)
                active.withLock { $0.serving -= 1 }
            }
            thread.name = "jobstored-metrics-client"
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 8192 {
            let n = buffer.withUnsafeMutableBytes { raw in SystemCall.retryingInterrupts { recv(client, raw.baseAddress, raw.count, 0) } }
            if n <= 0 { return }
            request += buffer[0..<n]
            if Self.endsHeaders(request) { break }
        }
        let line = String(decoding: request.prefix { $0 != 0x0d && $0 != 0x0a }, as: UTF8.self).split(separator: " ")
        let response: String
        if line.count >= 2, line[0] == "GET" || line[0] == "HEAD", line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            let body = render()
            response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + (line[0] == "GET" ? body : "")
        } else if line.count >= 2, line[0] != "GET" && line[0] != "HEAD" {
            response = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        } else {
            let body = "jobstored serves metrics at /metrics\n"
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        }
        var bytes = Array(response.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { raw in SystemCall.retryingInterrupts { send(client, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL)) } }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Whether the request's header block is complete (a blank line anywhere; a body or a
    /// pipelined request after it is ignored).
    static func endsHeaders(_ bytes: [UInt8]) -> Bool {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0a && (bytes[i + 1] == 0x0a || (bytes[i + 1] == 0x0d && i + 2 < bytes.count && bytes[i + 2] == 0x0a)) {
                return true
            }
            i += 1
        }
        return false
    }
}

/// A metrics endpoint that cannot start.
public struct MetricsError: Error, CustomStringConvertible {
    public let description: String
    /// The address is taken (by a daemon being replaced, while it drains).
    public let addressInUse: Bool
    init(_ description: String, addressInUse: Bool = false) {
        self.description = description
        self.addressInUse = addressInUse
    }
}
