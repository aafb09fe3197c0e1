import Foundation
import JobStoreCore
import JobStoreWire
import Logging
import Synchronization

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
    /// What `state` guards: the calls in flight, and how far the connection is from closing.
    private struct State {
        var calls: [UInt32: ServerCall] = [:]
        /// Calls forgotten by id but still writing their answer: the socket stays open for them
        /// (closed, its descriptor number could go to the next client, and the answer with it).
        var answering = 0
        var readerDone = false
        var closed = false
    }
    private let state = Mutex(State())
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
        state.withLock { $0.calls[id] }
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
        let admission: Admission = state.withLock { s in
            // Answered before the next frame is read: nothing can reach it by id, so it is not
            // registered (a Ping is then one lookup, not an insert and a removal).
            if method.runsInline && s.calls[id] == nil { return .inline }
            // A client with one call at a time (a Toil worker): its short call runs here, with
            // no hand-off to a pool thread (a wake-up cost ~45 µs of CPU and ~100 µs of latency
            // per call on this machine kind). Should the client send anything while it runs,
            // it multiplexes, and from then on its calls go to the pool.
            if !multiplexed && method.isBoundedUnary && frame.fd == nil && s.calls.isEmpty { return .onReader }
            if s.calls[id] != nil { return .idInUse }
            if s.calls.count >= Self.maxCallsPerConnection { return .tooMany }
            s.calls[id] = call
            return .pooled
        }
        switch admission {
        case .inline:
            server.stats.callStarted()
            execute(call, payload: frame.payload, registered: false)
            return true
        case .onReader:
            server.stats.callStarted()
            execute(call, payload: frame.payload, registered: false) { [self] in
                if reader?.hasPendingInput == true { multiplexed = true }
            }
            return true
        case .idInUse:
            logger.notice("closing connection: call id \(id) reused while in flight")
            return false
        case .tooMany:
            reject(id, JobStoreError(.resourceExhausted, "more than \(Self.maxCallsPerConnection) calls in flight on one connection"))
            return true
        case .pooled:
            break
        }
        server.stats.callStarted()
        let payload = frame.payload
        server.pool.submit { [self] in execute(call, payload: payload) }
        return true
    }

    /// Where a request goes, as decided under the lock.
    private enum Admission {
        /// Run at once on the reader thread, unregistered.
        case inline
        /// Run on the reader thread, unregistered (a client with one call at a time).
        case onReader
        /// Its id is that of a call in flight: the connection closes.
        case idInUse
        /// Refused with RESOURCE_EXHAUSTED.
        case tooMany
        /// Registered; runs on the pool.
        case pooled
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
            state.withLock { s in
                s.calls[call.callID] = nil
                s.answering += 1
            }
        }
        beforeAnswer()
        try? writer.send(FrameHeader(payloadLength: 0, callID: call.callID, code: code.rawValue, type: .response), payload: response)
        if registered {
            state.withLock { $0.answering -= 1 }
        }
        server.stats.callFinished(call.method, failed: code != .ok, micros: (DispatchTime.now().uptimeNanoseconds - start) / 1000)
        closeIfIdle()
    }

    private func reject(_ id: UInt32, _ error: JobStoreError) {
        try? writer.send(FrameHeader(payloadLength: 0, callID: id, code: error.code.rawValue, type: .response),
                         payload: error.status.serialized())
    }

    private func readerStopped() {
        let active = state.withLock { s in
            s.readerDone = true
            return Array(s.calls.values)
        }
        for call in active { call.fail(JobStoreError(.cancelled, "connection closed")) }
        closeIfIdle()
    }

    private func closeIfIdle() {
        let shouldClose = state.withLock { s in
            let shouldClose = s.readerDone && s.calls.isEmpty && s.answering == 0 && !s.closed
            if shouldClose { s.closed = true }
            return shouldClose
        }
        if shouldClose {
            close(fd)
            server.connectionClosed(self)
        }
    }
}
