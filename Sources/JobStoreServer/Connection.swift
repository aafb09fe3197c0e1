import Foundation
import JobStoreCore
import JobStoreWire
import Logging

/// One client connection: a reader thread that decodes frames and routes them to calls, and
/// calls that run on the worker pool and answer through the connection's shared writer.
///
/// The socket is closed only when the reader has stopped and every call has answered, so a
/// late answer can never land on a descriptor number reused by another connection.
final class Connection: @unchecked Sendable {
    let fd: Int32
    let peer: Peer
    private let server: SocketServer
    private let writer: FrameWriter
    private let lock = NSLock()
    private var calls: [UInt32: ServerCall] = [:]
    private var readerDone = false
    private var closed = false
    private var logger: Logger
    /// Reader-thread state: the frame reader, and whether this client has sent a frame while
    /// an earlier call was still running (a multiplexing client: its calls go to the pool).
    private var reader: FrameReader?
    private var multiplexed = false

    /// More calls than this in flight on one connection get RESOURCE_EXHAUSTED.
    static let maxCallsPerConnection = 512

    init(fd: Int32, peer: Peer, server: SocketServer, logger: Logger) {
        self.fd = fd
        self.peer = peer
        self.server = server
        self.writer = FrameWriter(fd: fd)
        self.logger = logger
        self.logger[metadataKey: "peer"] = "pid=\(peer.pid) uid=\(peer.uid)"
    }

    /// Reads frames until the peer closes, the framing breaks, or the server shuts down.
    func run() {
        let reader = FrameReader(fd: fd, midFrameTimeout: server.midFrameTimeout)
        self.reader = reader
        defer { readerStopped() }
        while true {
            let frame: Frame
            do {
                guard let next = try reader.next(maxPayload: Self.maxPayload) else { return }
                frame = next
            } catch {
                logger.debug("closing connection: \(error)")
                return
            }
            switch frame.header.type {
            case .request:
                guard handleRequest(frame) else { return }
            case .data:
                closeStray(frame)
                server.stats.addBytesIn(frame.payload.count)
                if let call = call(frame.header.callID), call.method.shape == .upload {
                    call.deliver(frame.payload)
                }
            case .end:
                closeStray(frame)
                call(frame.header.callID)?.endUpload()
            case .cancel:
                closeStray(frame)
                call(frame.header.callID)?.fail(JobStoreError(.cancelled, "cancelled by the client"))
            case .response, nil:
                closeStray(frame)
                logger.notice("closing connection: unexpected frame type \(frame.header.rawType)")
                return
            }
        }
    }

    /// Stops reading (shutdown): calls in flight still answer, uploads are cancelled.
    func stopReading() {
        Glibc.shutdown(fd, Int32(SHUT_RD))
    }

    private static func maxPayload(_ header: FrameHeader) -> Int {
        header.type == .data ? WireLimits.maxDataBytes : WireLimits.maxMessageBytes
    }

    private func closeStray(_ frame: Frame) {
        if let d = frame.fd { close(d) }
    }

    private func call(_ id: UInt32) -> ServerCall? {
        lock.lock()
        defer { lock.unlock() }
        return calls[id]
    }

    /// Returns false when the connection must be closed (a protocol violation).
    private func handleRequest(_ frame: Frame) -> Bool {
        let id = frame.header.callID
        guard let method = JobStoreMethod(rawValue: frame.header.code) else {
            closeStray(frame)
            reject(id, JobStoreError(.unimplemented, "unknown method id \(frame.header.code)"))
            return true
        }
        switch (method.fdPassing, frame.fd) {
        case (.none, .some):
            closeStray(frame)
            reject(id, JobStoreError(.invalidArgument, "\(method.name) takes no file descriptor"))
            return true
        case (.required, nil):
            reject(id, JobStoreError(.invalidArgument, "\(method.name) needs a file descriptor passed with the request"))
            return true
        default:
            break
        }
        let call = ServerCall(method: method, callID: id, peer: peer, fd: frame.fd, writer: writer, stats: server.stats)
        lock.lock()
        if method.runsInline && calls[id] == nil {
            // Answered before the next frame is read: nothing can reach it by id, so it is not
            // registered (a Ping is then one lookup, not an insert and a removal).
            lock.unlock()
            server.stats.callStarted()
            execute(call, payload: frame.payload, registered: false)
            return true
        }
        if !multiplexed && method.isBoundedUnary && frame.fd == nil && calls.isEmpty {
            // A client with one call at a time (a Toil worker): its short call runs here, with
            // no hand-off to a pool thread (a wake-up cost ~45 µs of CPU and ~100 µs of latency
            // per call on this machine kind). Should the client send anything while it runs,
            // it multiplexes, and from then on its calls go to the pool.
            lock.unlock()
            server.stats.callStarted()
            execute(call, payload: frame.payload, registered: false) { [self] in
                if reader?.hasPendingInput == true { multiplexed = true }
            }
            return true
        }
        if calls[id] != nil {
            lock.unlock()
            logger.notice("closing connection: call id \(id) reused while in flight")
            return false
        }
        if calls.count >= Self.maxCallsPerConnection {
            lock.unlock()
            reject(id, JobStoreError(.resourceExhausted, "more than \(Self.maxCallsPerConnection) calls in flight on one connection"))
            return true
        }
        calls[id] = call
        lock.unlock()
        server.stats.callStarted()
        let payload = frame.payload
        server.pool.submit { [self] in execute(call, payload: payload) }
        return true
    }

    private func execute(_ call: ServerCall, payload: [UInt8], registered: Bool = true, beforeAnswer: () -> Void = {}) {
        let start = DispatchTime.now().uptimeNanoseconds
        var code = StatusCode.ok
        var response: [UInt8]
        do {
            response = try payload.withUnsafeBytes { raw in
                // The request may carry an SSE-C key (`sse_key`): its frame's bytes are wiped once
                // the call is done with them, whatever the outcome (the array is not read again).
                defer { if let base = raw.baseAddress, raw.count > 0 { explicit_bzero(UnsafeMutableRawPointer(mutating: base), raw.count) } }
                return try server.service.dispatch(call.method, payload: raw, call: call)
            }
        } catch let error as JobStoreError {
            code = error.code
            response = error.status.serialized()
        } catch let failure as JobStoreFailure {
            code = failure.wireError.code
            response = failure.wireError.status.serialized()
        } catch let error as WireDecodingError {
            code = .invalidArgument
            response = JobStoreError(.invalidArgument, "\(error)").status.serialized()
        } catch {
            code = .internal
            logger.error("\(call.method.name) failed unexpectedly: \(error)")
            response = JobStoreError(.internal, "\(error)").status.serialized()
        }
        if code != .ok {
            logger.debug("\(call.method.name) → \(code.name)")
        }
        call.markFinished()
        // Forget the call before answering: once answered, the client may reuse its id.
        if registered {
            lock.lock()
            calls[call.callID] = nil
            lock.unlock()
        }
        beforeAnswer()
        try? writer.send(FrameHeader(payloadLength: 0, callID: call.callID, code: code.rawValue, type: .response), payload: response)
        server.stats.callFinished(call.method, failed: code != .ok, micros: (DispatchTime.now().uptimeNanoseconds - start) / 1000)
        closeIfIdle()
    }

    private func reject(_ id: UInt32, _ error: JobStoreError) {
        try? writer.send(FrameHeader(payloadLength: 0, callID: id, code: error.code.rawValue, type: .response),
                         payload: error.status.serialized())
    }

    private func readerStopped() {
        lock.lock()
        readerDone = true
        let active = Array(calls.values)
        lock.unlock()
        for call in active { call.fail(JobStoreError(.cancelled, "connection closed")) }
        closeIfIdle()
    }

    private func closeIfIdle() {
        lock.lock()
        let shouldClose = readerDone && calls.isEmpty && !closed
        if shouldClose { closed = true }
        lock.unlock()
        if shouldClose {
            close(fd)
            server.connectionClosed(self)
        }
    }
}
