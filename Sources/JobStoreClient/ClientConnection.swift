import Foundation
import JobStoreWire

/// One connection to jobstored, shared by every task of a process: calls are multiplexed by
/// call id, answered by one reader thread, and may be in flight from many tasks at once.
public final class ClientConnection: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let writer: FrameWriter
    private let lock = NSLock()
    private var pending: [UInt32: PendingCall] = [:]
    private var nextID: UInt32 = 1
    private var lostReason: JobStoreError?

    /// The daemon's default socket (see `SocketPath`).
    public static var defaultSocketPath: String {
        (try? SocketPath.defaultPath()) ?? "/tmp/jobstored-\(getuid())/jobstored.sock"
    }

    public init(path: String? = nil) throws {
        self.path = path ?? Self.defaultSocketPath
        do {
            fd = try UnixSocket.connect(path: self.path)
        } catch {
            throw JobStoreError(.unavailable, "cannot reach jobstored at \(self.path): \(error)")
        }
        writer = FrameWriter(fd: fd)
        let thread = Thread { [self] in readLoop() }
        thread.name = "jobstore-client-reader"
        thread.start()
    }

    deinit {
        Glibc.close(fd)
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE.
    public func close() {
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    // MARK: calls

    public func unary(_ method: JobStoreMethod, _ request: [UInt8], fd: Int32? = nil) async throws -> [UInt8] {
        let (id, call) = try register()
        try send(FrameHeader(payloadLength: 0, callID: id, code: method.rawValue, type: .request), request, fd: fd, id: id)
        return try await call.response()
    }

    public func upload(_ method: JobStoreMethod, _ request: [UInt8], body: (ClientUpload) async throws -> Void) async throws -> [UInt8] {
        let (id, call) = try register()
        try send(FrameHeader(payloadLength: 0, callID: id, code: method.rawValue, type: .request), request, fd: nil, id: id)
        let upload = ClientUpload(connection: self, callID: id, call: call)
        do {
            try await body(upload)
        } catch {
            try? writer.send(FrameHeader(payloadLength: 0, callID: id, code: 0, type: .cancel), payload: [])
            _ = try? await call.response()
            throw error
        }
        if !call.isFinished {
            try send(FrameHeader(payloadLength: 0, callID: id, code: 0, type: .end), [], fd: nil, id: id)
        }
        return try await call.response()
    }

    public func download(_ method: JobStoreMethod, _ request: [UInt8], onData: (UnsafeRawBufferPointer) throws -> Void) async throws -> [UInt8] {
        let (id, call) = try register()
        try send(FrameHeader(payloadLength: 0, callID: id, code: method.rawValue, type: .request), request, fd: nil, id: id)
        while true {
            switch await call.next() {
            case .data(let bytes):
                do {
                    try bytes.withUnsafeBytes { try onData($0) }
                } catch {
                    forget(id)
                    call.abandon()
                    try? writer.send(FrameHeader(payloadLength: 0, callID: id, code: 0, type: .cancel), payload: [])
                    throw error
                }
            case .response(let result):
                return try result.get()
            }
        }
    }

    func sendData(callID: UInt32, _ bytes: UnsafeRawBufferPointer) throws {
        do {
            try writer.sendData(callID: callID, bytes)
        } catch {
            throw JobStoreError(.unavailable, "connection to jobstored lost: \(error)")
        }
    }

    private func register() throws -> (UInt32, PendingCall) {
        lock.lock()
        defer { lock.unlock() }
        if let lostReason { throw lostReason }
        let call = PendingCall()
        var id = nextID
        while pending[id] != nil || id == 0 { id &+= 1 }
        nextID = id &+ 1
        pending[id] = call
        return (id, call)
    }

    private func forget(_ id: UInt32) {
        lock.lock()
        pending[id] = nil
        lock.unlock()
    }

    private func send(_ header: FrameHeader, _ payload: [UInt8], fd: Int32?, id: UInt32) throws {
        do {
            try writer.send(header, payload: payload, passing: fd)
        } catch {
            forget(id)
            throw JobStoreError(.unavailable, "connection to jobstored lost: \(error)")
        }
    }

    private func readLoop() {
        let reader = FrameReader(fd: fd)
        var reason = "closed by the daemon"
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
                        // A connection-level refusal (PERMISSION_DENIED): it ends the connection.
                        reason = error.description
                    }
                    call?.push(.response(.failure(error)))
                }
            default:
                continue
            }
        }
        lock.lock()
        let lost = JobStoreError(.unavailable, "connection to jobstored lost: \(reason)")
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
    private let callID: UInt32
    private let call: PendingCall

    init(connection: ClientConnection, callID: UInt32, call: PendingCall) {
        self.connection = connection
        self.callID = callID
        self.call = call
    }

    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        if call.isFinished {
            _ = try await call.response()
            throw JobStoreError(.failedPrecondition, "the daemon ended the upload early")
        }
        try connection.sendData(callID: callID, bytes)
    }

    public func write(_ bytes: [UInt8]) async throws {
        if call.isFinished {
            _ = try await call.response()
            throw JobStoreError(.failedPrecondition, "the daemon ended the upload early")
        }
        try bytes.withUnsafeBytes { try connection.sendData(callID: callID, $0) }
    }
}
