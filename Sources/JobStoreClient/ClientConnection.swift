import Foundation
import JobStoreWire
import Synchronization

/// One connection to jobstored, shared by every task of a process: calls are multiplexed by
/// call id, answered by one reader thread, and may be in flight from many tasks at once.
///
/// When the daemon goes away (a restart, an upgrade), the calls in flight fail with UNAVAILABLE
/// and the next call connects again, waiting up to `reconnectTimeout` seconds for the daemon.
public final class ClientConnection: Sendable {
    public let path: String
    /// Seconds the next call waits for a daemon that went away to be back.
    public var reconnectTimeout: Double {
        get { state.withLock { $0.reconnectTimeout } }
        set { state.withLock { $0.reconnectTimeout = newValue } }
    }

    /// What the mutex guards: the current link, the calls in flight on it, and why it was lost.
    private struct State {
        var reconnectTimeout: Double
        var link: Link
        var pending: [UInt32: PendingCall] = [:]
        var nextID: UInt32 = 1
        var lostReason: JobStoreError?
        var closedByUser = false

        /// Registers a new call on the current link, or throws why the link was lost.
        mutating func register() throws -> (UInt32, PendingCall, Link) {
            if let lostReason { throw lostReason }
            let call = PendingCall()
            var id = nextID
            while pending[id] != nil || id == 0 { id &+= 1 }
            nextID = id &+ 1
            pending[id] = call
            return (id, call, link)
        }
    }
    private let state: Mutex<State>

    /// One socket to the daemon and its writer; replaced when the daemon comes back.
    final class Link: Sendable {
        let fd: Int32
        let writer: FrameWriter
        init(fd: Int32) {
            self.fd = fd
            writer = FrameWriter(fd: fd)
        }
    }

    /// The daemon's default socket (see `SocketPath`).
    public static var defaultSocketPath: String {
        (try? SocketPath.defaultPath()) ?? "/tmp/jobstored-\(getuid())/jobstored.sock"
    }

    /// How a new socket to the daemon is made: connecting to `path`, or nothing (a socket that
    /// was handed over connected cannot be dialled again).
    private let dial: @Sendable () throws -> Int32

    public init(path: String? = nil) throws {
        let path = path ?? Self.defaultSocketPath
        self.path = path
        let dial: @Sendable () throws -> Int32 = { try UnixSocket.connect(path: path) }
        self.dial = dial
        let link = try Self.open(path, dial)
        state = Mutex(State(reconnectTimeout: 30, link: link))
        startReader(link)
    }

    /// A connection over a socket that is already connected to a server: one end of a
    /// socketpair whose other end a `SocketServer` admitted (in-process tests, embedders).
    /// Takes ownership of `fd`. It cannot reconnect: once lost, calls fail with UNAVAILABLE.
    public init(connectedSocket fd: Int32, name: String = "a connected socket") {
        path = name
        dial = { throw SocketError("\(name) cannot be connected again") }
        let link = Link(fd: fd)
        state = Mutex(State(reconnectTimeout: 0, link: link))
        startReader(link)
    }

    private static func open(_ path: String, _ dial: () throws -> Int32) throws -> Link {
        do {
            return Link(fd: try dial())
        } catch {
            throw JobStoreError(.unavailable, "cannot reach jobstored at \(path): \(error)")
        }
    }

    private func startReader(_ link: Link) {
        let thread = Thread { [self] in readLoop(link) }
        thread.name = "jobstore-client-reader"
        thread.start()
    }

    deinit {
        Glibc.close(state.withLock { $0.link.fd })
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE, later calls too.
    public func close() {
        let fd = state.withLock { s in
            s.closedByUser = true
            return s.link.fd
        }
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Connects again after the connection was lost, retrying while the daemon is away.
    private func reconnect() throws {
        let deadline = Date().addingTimeInterval(reconnectTimeout)
        var delay: useconds_t = 20_000
        while true {
            do {
                let fresh = try Self.open(path, dial)
                let old: Link? = state.withLock { s in
                    guard s.lostReason != nil, !s.closedByUser else { return nil }
                    let old = s.link
                    s.link = fresh
                    s.lostReason = nil
                    return old
                }
                guard let old else {
                    Glibc.close(fresh.fd)
                    return
                }
                Glibc.close(old.fd)
                startReader(fresh)
                return
            } catch {
                guard Date() < deadline else { throw error }
                usleep(delay)
                delay = min(delay * 2, 500_000)
            }
        }
    }

    // MARK: calls

    public func unary(_ method: JobStoreMethod, _ request: [UInt8], fd: Int32? = nil) async throws -> [UInt8] {
        let (id, call, link) = try register()
        try send(link, FrameHeader(payloadLength: 0, callID: id, code: method.rawValue, type: .request), request, fd: fd, id: id)
        return try await call.response()
    }

    public func upload(_ method: JobStoreMethod, _ request: [UInt8], body: (ClientUpload) async throws -> Void) async throws -> [UInt8] {
        let (id, call, link) = try register()
        try send(link, FrameHeader(payloadLength: 0, callID: id, code: method.rawValue, type: .request), request, fd: nil, id: id)
        let upload = ClientUpload(connection: self, link: link, callID: id, call: call)
        do {
            try await body(upload)
        } catch {
            try? link.writer.send(FrameHeader(payloadLength: 0, callID: id, code: 0, type: .cancel), payload: [])
            _ = try? await call.response()
            throw error
        }
        if !call.isFinished {
            try send(link, FrameHeader(payloadLength: 0, callID: id, code: 0, type: .end), [], fd: nil, id: id)
        }
        return try await call.response()
    }

    public func download(_ method: JobStoreMethod, _ request: [UInt8], onData: (UnsafeRawBufferPointer) throws -> Void) async throws -> [UInt8] {
        let (id, call, link) = try register()
        try send(link, FrameHeader(payloadLength: 0, callID: id, code: method.rawValue, type: .request), request, fd: nil, id: id)
        while true {
            switch await call.next() {
            case .data(let bytes):
                do {
                    try bytes.withUnsafeBytes { try onData($0) }
                } catch {
                    forget(id)
                    call.abandon()
                    try? link.writer.send(FrameHeader(payloadLength: 0, callID: id, code: 0, type: .cancel), payload: [])
                    throw error
                }
            case .response(let result):
                return try result.get()
            }
        }
    }

    func sendData(_ link: Link, callID: UInt32, _ bytes: UnsafeRawBufferPointer) throws {
        do {
            try link.writer.sendData(callID: callID, bytes)
        } catch {
            throw JobStoreError(.unavailable, "connection to jobstored lost: \(error)")
        }
    }

    private func register() throws -> (UInt32, PendingCall, Link) {
        // nil: the link was lost and should be dialled again first (outside the lock).
        let registered: (UInt32, PendingCall, Link)? = try state.withLock { s in
            if s.lostReason != nil && !s.closedByUser { return nil }
            return try s.register()
        }
        if let registered { return registered }
        try reconnect()
        return try state.withLock { try $0.register() }
    }

    private func forget(_ id: UInt32) {
        state.withLock { $0.pending[id] = nil }
    }

    private func send(_ link: Link, _ header: FrameHeader, _ payload: [UInt8], fd: Int32?, id: UInt32) throws {
        do {
            try link.writer.send(header, payload: payload, passing: fd)
        } catch {
            forget(id)
            throw refusal(of: link) ?? JobStoreError(.unavailable, "connection to jobstored lost: \(error)")
        }
    }

    /// Why the daemon closed `link`, when it said so (a refused peer's PERMISSION_DENIED): a
    /// send that found the connection closed waits a moment for the reader to read it.
    private func refusal(of link: Link) -> JobStoreError? {
        for _ in 0..<200 {
            let lost = state.withLock { link === $0.link ? $0.lostReason : nil }
            if let lost { return lost.code == .unavailable ? nil : lost }
            usleep(5000)
        }
        return nil
    }

    private func readLoop(_ link: Link) {
        let reader = FrameReader(fd: link.fd)
        var reason = "closed by the daemon"
        var refusal: JobStoreError?
        while true {
            let frame: Frame
            do {
                guard let next = try reader.next(maxPayload: { $0.type == .data ? WireLimits.maxDataBytes : WireLimits.maxMessageBytes })
                else { break }
                frame = next
            } catch {
                reason = "\(error)"
                break
            }
            if let stray = frame.fd { Glibc.close(stray) }
            let id = frame.header.callID
            switch frame.header.type {
            case .data:
                let call = state.withLock { $0.pending[id] }
                call?.push(.data(frame.payload))
            case .response:
                let call = state.withLock { $0.pending.removeValue(forKey: id) }
                let code = StatusCode(rawValue: frame.header.code) ?? .unknown
                if code == .ok {
                    call?.push(.response(.success(frame.payload)))
                } else {
                    let status = (try? Status(serialized: frame.payload)) ?? Status(code: UInt32(code.rawValue), message: "undecodable status")
                    var error = JobStoreError(status: status)
                    error.code = code
                    if id == 0 && call == nil {
                        // A connection-level refusal (PERMISSION_DENIED): it ends the connection,
                        // and every call fails with it (not UNAVAILABLE: waiting will not help).
                        reason = error.description
                        refusal = JobStoreError(error.code, "jobstored refused this connection: \(error.message)", kind: error.kind)
                    }
                    call?.push(.response(.failure(error)))
                }
            default:
                continue
            }
        }
        let failed: (JobStoreError, [PendingCall])? = state.withLock { s in
            guard link === s.link else { return nil }  // an old link: its calls were failed when it was lost
            let lost = refusal ?? JobStoreError(.unavailable, "connection to jobstored lost: \(reason)")
            s.lostReason = lost
            let calls = Array(s.pending.values)
            s.pending = [:]
            return (lost, calls)
        }
        guard let failed else { return }
        let (lost, calls) = failed
        for call in calls { call.push(.response(.failure(lost))) }
    }
}

/// The writing end of an upload call: bytes go out as DATA frames of at most 1 MiB.
/// Writing after the daemon has already answered (an early error) throws that answer.
public final class ClientUpload: Sendable {
    private let connection: ClientConnection
    private let link: ClientConnection.Link
    private let callID: UInt32
    private let call: PendingCall

    init(connection: ClientConnection, link: ClientConnection.Link, callID: UInt32, call: PendingCall) {
        self.connection = connection
        self.link = link
        self.callID = callID
        self.call = call
    }

    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        if call.isFinished {
            _ = try await call.response()
            throw JobStoreError(.failedPrecondition, "the daemon ended the upload early")
        }
        try connection.sendData(link, callID: callID, bytes)
    }

    public func write(_ bytes: [UInt8]) async throws {
        if call.isFinished {
            _ = try await call.response()
            throw JobStoreError(.failedPrecondition, "the daemon ended the upload early")
        }
        try bytes.withUnsafeBytes { try connection.sendData(link, callID: callID, $0) }
    }
}
