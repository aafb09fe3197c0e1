import CCurl
import Foundation
import Synchronization

/// The node's one HTTP session: a libcurl multi handle, so every bucket and every worker
/// share its connection pool, DNS cache and TLS sessions.
///
/// Callers block in `perform` on their own threads, and one of them at a time drives the multi
/// handle (leader/follower): the first caller to find no driver moves everyone's bytes until
/// its own transfer is done, then hands the role to a caller still waiting. A lone request thus
/// runs on its caller's thread with no thread switch; a dedicated session thread cost two
/// wake-ups per request, a third of the daemon's CPU for a small S3 request. Request and
/// response bodies are in memory (transfers are cut into parts above this layer), so no
/// callback ever blocks the driver.
public final class CurlSession: @unchecked Sendable {
    /// One HTTP request, already signed: the session only moves bytes.
    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [(String, String)]
        /// A slice, so that a part's buffer from the pool is sent without a copy.
        public var body: ArraySlice<UInt8>
        /// Reserve this much for the response body (a ranged GET knows its size).
        public var expectedResponseBytes: Int
        /// Give up after this many seconds in all (0: no limit beyond stall detection).
        public var timeoutSeconds: Int
        public init(method: String, url: String, headers: [(String, String)] = [], body: ArraySlice<UInt8> = [],
                    expectedResponseBytes: Int = 0, timeoutSeconds: Int = 0) {
            self.timeoutSeconds = timeoutSeconds
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.expectedResponseBytes = expectedResponseBytes
        }
    }

    /// What came back: status, headers and body, for S3Client to interpret.
    public struct Response: Sendable {
        public var status: Int
        /// Header names lower-cased.
        public var headers: [String: String]
        public var body: [UInt8]
    }

    /// A transport failure (no HTTP status): connection refused, reset, timeout.
    public struct TransportError: Error, Sendable, CustomStringConvertible {
        public let code: Int
        public let message: String
        public var description: String { "libcurl error \(code): \(message)" }
    }

    private let multi: UnsafeMutableRawPointer
    /// What `state` guards: the transfers waiting for the driver, and whether there is one.
    private struct State {
        /// Transfers not yet added to the multi handle.
        var queued: [Transfer] = []
        /// Whether a caller is driving the multi handle.
        var driving = false
    }
    private let state = Mutex(State())
    /// Transfers in the multi handle: touched only by the driver.
    private var running: [UnsafeMutableRawPointer: Transfer] = [:]
    private let maxConnections: Int
    /// Abort a transfer that moves fewer than 1 byte/s for this many seconds.
    public let stallSeconds: Int

    private static let globalInit: Void = { curl_global_init(3) }()

    /// How servers' certificates are checked (every request of the session).
    public let tls: TLSSettings

    /// Proxies of every request (none unless given: the environment is read by the daemon).
    public let proxies: ProxySettings
    /// Connections opened and reused, TLS handshakes: what sharing one pool saves.
    public let connections = ConnectionCounters()
    /// TLS sessions (and DNS answers) shared by the pool's connections (libcurl's share interface).
    /// Kept, with its locks, as long as the multi handle (the session lives as long as the daemon).
    private let share: UnsafeMutableRawPointer?
    private let shareLocks: UnsafeMutableRawPointer?

    public init(maxConnections: Int = 64, stallSeconds: Int = 30, tls: TLSSettings = TLSSettings(),
                proxies: ProxySettings = ProxySettings()) {
        _ = Self.globalInit
        self.maxConnections = maxConnections
        self.stallSeconds = stallSeconds
        self.tls = tls
        self.proxies = proxies
        var locks: UnsafeMutableRawPointer?
        share = jobstore_curl_share_new(&locks)
        shareLocks = locks
        multi = curl_multi_init()
        jobstore_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxConnections)
        jobstore_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxConnections)
    }

    /// Runs one HTTP exchange; blocks the calling thread until it is complete.
    public func perform(_ request: Request) throws -> Response {
        let transfer = Transfer(request, stallSeconds: stallSeconds, tls: tls, proxies: proxies, connections: connections, share: share)
        let leads = state.withLock { s in
            s.queued.append(transfer)
            let leads = !s.driving
            s.driving = true
            return leads
        }
        if leads {
            drive(until: transfer)
        } else {
            curl_multi_wakeup(multi)  // the driver adds it now, not after its poll times out
            if transfer.awaitResultOrTurn() { drive(until: transfer) }
        }
        return try transfer.response()
    }

    /// Moves every transfer's bytes until `mine` is done, then passes the driver's role to a
    /// caller whose transfer is still in flight (or leaves it free when none is).
    private func drive(until mine: Transfer) {
        while true {
            let starting = state.withLock { s in
                let starting = s.queued
                s.queued = []
                return starting
            }
            for t in starting {
                running[t.easy] = t
                curl_multi_add_handle(multi, t.easy)
            }
            var stillRunning: Int32 = 0
            curl_multi_perform(multi, &stillRunning)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let t = running.removeValue(forKey: easy) else { continue }
                let result = jobstore_curl_message_result(message)
                curl_multi_remove_handle(multi, easy)
                t.finish(result)
            }
            if mine.isFinished { break }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        let next: Transfer? = state.withLock { s in
            // Every transfer in `running` or `queued` has its caller waiting in `perform`.
            let next = running.values.first ?? s.queued.first
            if next == nil { s.driving = false }
            return next
        }
        next?.takeTurn()
    }
}

/// One HTTP exchange in flight: the easy handle and the memory it reads from and writes to.
final class Transfer: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    let connections: ConnectionCounters
    /// https: each connection opened is a TLS handshake.
    let secure: Bool
    /// Read from the connection at the first header line (driver thread only).
    var tlsChecked = false
    var tlsResumed = false
    private var body: ArraySlice<UInt8>
    private var bodyOffset = 0
    private var received: [UInt8] = []
    private var headers: [String: String] = [:]
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let done = NSCondition()
    private var result: Result<CurlSession.Response, Error>?
    /// A small request body's own copy, sent with the headers (see `inlineBodyLimit`).
    private var inlineBody: UnsafeMutableRawBufferPointer?
    /// Bodies under this size are sent as libcurl "post fields", appended to the request headers.
    static let inlineBodyLimit = 64 << 10
    /// Set when this transfer's caller is to take over driving the session.
    private var turn = false
    /// libcurl writes its error text here; memory of our own, since curl keeps the pointer.
    private let errorBuffer: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        p.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        return p
    }()

    init(_ request: CurlSession.Request, stallSeconds: Int, tls: TLSSettings, proxies: ProxySettings,
         connections: ConnectionCounters, share: UnsafeMutableRawPointer?) {
        easy = curl_easy_init()
        if let share { jobstore_curl_setopt_ptr(easy, CURLOPT_SHARE, share) }
        self.connections = connections
        secure = request.url.hasPrefix("https:")
        body = request.body
        received.reserveCapacity(request.expectedResponseBytes)
        let context = Unmanaged.passUnretained(self).toOpaque()
        jobstore_curl_setopt_ptr(easy, CURLOPT_URL, request.url)
        if let bundle = tls.caBundle { jobstore_curl_setopt_ptr(easy, CURLOPT_CAINFO, bundle) }  // libcurl copies it
        // Explicit, so that libcurl's own reading of the environment never differs from ours.
        jobstore_curl_setopt_ptr(easy, CURLOPT_PROXY, proxies.proxy(for: request.url) ?? "")
        jobstore_curl_setopt_ptr(easy, CURLOPT_NOPROXY, proxies.noProxy ?? "")
        if !tls.verify {
            jobstore_curl_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0)
            jobstore_curl_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
        }
        jobstore_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        // Fewer, larger callbacks for part-sized bodies (defaults: 16 KiB down, 64 KiB up).
        if request.body.count > 1 << 20 { jobstore_curl_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, 1 << 20) }
        if request.expectedResponseBytes > 1 << 20 { jobstore_curl_setopt_long(easy, CURLOPT_BUFFERSIZE, 512 << 10) }
        jobstore_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        jobstore_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, stallSeconds)
        jobstore_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, request.timeoutSeconds > 0 ? min(10, request.timeoutSeconds) : 10)
        if request.timeoutSeconds > 0 { jobstore_curl_setopt_long(easy, CURLOPT_TIMEOUT, request.timeoutSeconds) }
        jobstore_curl_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        jobstore_curl_setopt_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let t = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            data.map { t.received.append(contentsOf: UnsafeRawBufferPointer(start: $0, count: n)) }
            return n
        }
        jobstore_curl_setopt_ptr(easy, CURLOPT_WRITEDATA, context)
        jobstore_curl_setopt_callback(easy, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            let t = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            if let data { t.takeHeaderLine(UnsafeRawBufferPointer(start: data, count: n)) }
            // Whether the connection resumed a TLS session is known only while it is attached.
            if t.secure && !t.tlsChecked {
                t.tlsChecked = true
                t.tlsResumed = jobstore_curl_tls_session_reused(t.easy) == 1
            }
            return n
        }
        jobstore_curl_setopt_ptr(easy, CURLOPT_HEADERDATA, context)
        // No "Expect: 100-continue" round trip: bodies are in memory and requests are signed.
        var extraHeaders = [("Expect", "")]
        switch request.method {
        case "GET":
            break
        case "HEAD":
            jobstore_curl_setopt_long(easy, CURLOPT_NOBODY, 1)
        default:
            jobstore_curl_setopt_ptr(easy, CURLOPT_CUSTOMREQUEST, request.method)
            let sendsBody = !request.body.isEmpty || request.method == "PUT" || request.method == "POST"
            if sendsBody && request.body.count < Self.inlineBodyLimit {
                // A small body goes out with the headers in one write (libcurl appends "post
                // fields" under 64 KiB to the request): one send and one segment rather than two,
                // for the daemon and for the server. Copied: the caller may reuse its buffer.
                let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, request.body.count), alignment: 1)
                request.body.withUnsafeBytes { copy.copyMemory(from: $0) }
                inlineBody = copy
                jobstore_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
                jobstore_curl_setopt_ptr(easy, CURLOPT_POSTFIELDS, copy.baseAddress)
                if !request.headers.contains(where: { $0.0.lowercased() == "content-type" }) {
                    extraHeaders.append(("Content-Type", ""))  // no form type of libcurl's own
                }
            } else if sendsBody {
                jobstore_curl_setopt_long(easy, CURLOPT_UPLOAD, 1)
                jobstore_curl_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count))
                jobstore_curl_setopt_callback(easy, CURLOPT_READFUNCTION) { buffer, size, count, context in
                    let t = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                    let n = min(size * count, t.body.count - t.bodyOffset)
                    if n > 0, let buffer {
                        t.body.withUnsafeBytes { src in
                            UnsafeMutableRawPointer(buffer).copyMemory(from: src.baseAddress! + t.bodyOffset, byteCount: n)
                        }
                        t.bodyOffset += n
                    }
                    return n
                }
                jobstore_curl_setopt_ptr(easy, CURLOPT_READDATA, context)
            }
        }
        for (name, value) in request.headers + extraHeaders {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        jobstore_curl_setopt_ptr(easy, CURLOPT_HTTPHEADER, headerList)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        inlineBody?.deallocate()
        errorBuffer.deallocate()
    }

    /// One header line (`Name: value` and CRLF), parsed as bytes: Foundation's string trimming
    /// was a tenth of the daemon's CPU per small S3 request.
    func takeHeaderLine(_ line: UnsafeRawBufferPointer) {
        if line.starts(with: "HTTP/".utf8) {
            headers = [:]  // a new response (after 100 Continue or a redirect)
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
        let name = String(decoding: line[..<colon].lazy.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        var start = colon + 1
        var end = line.count
        while start < end, isSpace(line[start]) { start += 1 }
        while end > start, isSpace(line[end - 1]) { end -= 1 }
        headers[name] = String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
    }

    func finish(_ code: CURLcode) {
        let outcome: Result<CurlSession.Response, Error>
        var opened = 0
        jobstore_curl_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &opened)
        connections.record(opened: opened, secure: secure, resumed: opened > 0 && tlsResumed)
        if code == CURLE_OK {
            var status = 0
            jobstore_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            outcome = .success(CurlSession.Response(status: status, headers: headers, body: received))
        } else {
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            outcome = .failure(CurlSession.TransportError(code: Int(code.rawValue), message: message))
        }
        body = []  // the caller may reuse the buffer as soon as it wakes: hold no reference to it
        done.lock()
        result = outcome
        done.broadcast()
        done.unlock()
    }

    /// Waits until the transfer is finished (false) or its caller must drive the session
    /// (true: the previous driver left while this transfer was still in flight).
    func awaitResultOrTurn() -> Bool {
        done.lock()
        defer { done.unlock() }
        while result == nil && !turn { done.wait() }
        return result == nil
    }

    /// Asks this transfer's waiting caller to drive the session.
    func takeTurn() {
        done.lock()
        turn = true
        done.signal()
        done.unlock()
    }

    var isFinished: Bool {
        done.lock()
        defer { done.unlock() }
        return result != nil
    }

    /// The outcome, once finished.
    func response() throws -> CurlSession.Response {
        done.lock()
        let r = result!
        done.unlock()
        return try r.get()
    }
}
