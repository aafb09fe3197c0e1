import Foundation
import JobStoreWire

/// One connection to jobstored, shared by every task of a process: calls are multiplexed by
/// call id, answered by one reader thread, and may be in flight from many tasks at once.
///
/// When the daemon goes away (a restart, an upgrade), the calls in flight fail with UNAVAILABLE
/// and the next call connects again, waiting up to `reconnectTimeout` seconds for the daemon.
public final class ClientConnection: @unchecked Sendable {
    public let path: String
    /// Seconds the next call waits for a daemon that went away to be back.
    public var reconnectTimeout: Double {
        get { lock.lock(); defer { lock.unlock() }; return _reconnectTimeout }
        set { lock.lock(); _reconnectTimeout = newValue; lock.unlock() }
    }
    private var _reconnectTimeout: Double = 30
    private let lock = NSLock()
    private var link: Link
    private var pending: [UInt32: PendingCall] = [:]
    private var nextID: UInt32 = 1
    private var lostReason: JobStoreError?
    private var closedByUser = false

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

    public init(path: String? = nil) throws {
        self.path = path ?? Self.defaultSocketPath
        link = try Self.open(self.path)
        startReader(link)
    }

    private static func open(_ path: String) throws -> Link {
        do {
            return Link(fd: try UnixSocket.connect(path: path))
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
        Glibc.close(link.fd)
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE, later calls too.
    public func close() {
        lock.lock()
        closedByUser = true
        let fd = link.fd
        lock.unlock()
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Connects again after the connection was lost, retrying while the daemon is away.
    private func reconnect() throws {
        let deadline = Date().addingTimeInterval(reconnectTimeout)
        var delay: useconds_t = 20_000
        while true {
            do {
                let fresh = try Self.open(path)
                lock.lock()
                guard lostReason != nil, !closedByUser else {
                    lock.unlock()
                    Glibc.close(fresh.fd)
                    return
                }
                let old = link
                link = fresh
                lostReason = nil
                lock.unlock()
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
        lock.lock()
        if lostReason != nil && !closedByUser {
            lock.unlock()
            try reconnect()
            lock.lock()
        }
        defer { lock.unlock() }
        if let lostReason { throw lostReason }
        let call = PendingCall()
        var id = nextID
        while pending[id] != nil || id == 0 { id &+= 1 }
        nextID = id &+ 1
        pending[id] = call
        return (id, call, link)
    }

    private func forget(_ id: UInt32) {
        lock.lock()
        pending[id] = nil
        lock.unlock()
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
            lock.lock()
            let lost = link === self.link ? lostReason : nil
            lock.unlock()
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
                lock.lock()
                let call = pending[id]
                lock.unlock()
                call?.push(.data(frame.payload))
            case .response:
                lock.lock()
                let call = pending.removeValue(forKey: id)
                lock.unlock()
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
        lock.lock()
        guard link === self.link else {  // an old link: its calls were failed when it was lost
            lock.unlock()
            return
        }
        let lost = refusal ?? JobStoreError(.unavailable, "connection to jobstored lost: \(reason)")
        lostReason = lost
        let calls = Array(pending.values)
        pending = [:]
        lock.unlock()
        for call in calls { call.push(.response(.failure(lost))) }
    }
}

/// The writing end of an upload call: bytes go out as DATA frames of at most 1 MiB.
/// Writing after the daemon has already answered (an early error) throws that answer.
public final class ClientUpload: @unchecked Sendable {
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
