import Foundation
import JobStoreWire

/// One call in flight on the daemon: what a service method reaches besides its request —
/// the passed descriptor, the upload's DATA frames, the download's DATA frames.
///
/// The connection's reader thread produces into it; the worker thread running the method
/// consumes. An upload's buffer is bounded, so a fast client waits for a slow store rather
/// than filling the daemon's memory.
public final class ServerCall: @unchecked Sendable {
    public let method: JobStoreMethod
    public let callID: UInt32
    /// The peer process's credentials (SO_PEERCRED).
    public let peer: Peer
    let writer: FrameWriter
    let stats: ServerStats

    private let state = NSCondition()
    private var passedFD: Int32?
    private var chunks: [[UInt8]] = []
    private var chunkHead = 0
    private var bufferedBytes = 0
    private var uploadEnded = false
    private var failure: JobStoreError?
    private var finished = false
    /// Upload bytes buffered per call before the reader waits.
    static let uploadBufferLimit = 8 << 20

    init(method: JobStoreMethod, callID: UInt32, peer: Peer, fd: Int32?, writer: FrameWriter, stats: ServerStats) {
        self.method = method
        self.callID = callID
        self.peer = peer
        self.passedFD = fd
        self.writer = writer
        self.stats = stats
    }

    deinit {
        if let passedFD { close(passedFD) }
    }

    /// The descriptor that came with the request; the caller owns it from now on.
    public func takeFD() -> Int32? {
        state.lock()
        defer { state.unlock() }
        let fd = passedFD
        passedFD = nil
        return fd
    }

    /// Whether the client cancelled the call or went away.
    public var isCancelled: Bool {
        state.lock()
        defer { state.unlock() }
        return failure != nil
    }

    /// The next chunk of the upload, or nil once END has arrived. Throws CANCELLED when the
    /// client cancels or disconnects first: the method must then store nothing.
    public func nextChunk() throws -> [UInt8]? {
        state.lock()
        defer { state.unlock() }
        while chunkHead == chunks.count && !uploadEnded && failure == nil {
            state.wait()
        }
        if let failure { throw failure }
        if chunkHead == chunks.count { return nil }
        let chunk = chunks[chunkHead]
        chunks[chunkHead] = []
        chunkHead += 1
        if chunkHead > 64 && chunkHead * 2 > chunks.count {
            chunks.removeFirst(chunkHead)
            chunkHead = 0
        }
        bufferedBytes -= chunk.count
        state.broadcast()
        return chunk
    }

    /// Sends download bytes as DATA frames of at most 1 MiB each.
    public func send(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure = currentFailure() { throw failure }
        do {
            try writer.sendData(callID: callID, bytes)
        } catch {
            fail(JobStoreError(.cancelled, "client went away"))
            throw JobStoreError(.cancelled, "client went away")
        }
        stats.addBytesOut(bytes.count)
    }

    private func currentFailure() -> JobStoreError? {
        state.lock()
        defer { state.unlock() }
        return failure
    }

    // MARK: the connection's side

    /// Queues upload bytes; waits while the buffer is full. Dropped once the call has finished.
    func deliver(_ chunk: [UInt8]) {
        state.lock()
        defer { state.unlock() }
        while bufferedBytes >= Self.uploadBufferLimit && failure == nil && !finished {
            state.wait()
        }
        if failure != nil || finished || uploadEnded { return }
        chunks.append(chunk)
        bufferedBytes += chunk.count
        state.broadcast()
    }

    func endUpload() {
        state.lock()
        uploadEnded = true
        state.broadcast()
        state.unlock()
    }

    /// Cancels the call (CANCEL frame, disconnect, shutdown): waiting readers and writers wake.
    func fail(_ error: JobStoreError) {
        state.lock()
        if failure == nil { failure = error }
        chunks = []
        chunkHead = 0
        bufferedBytes = 0
        state.broadcast()
        state.unlock()
    }

    func markFinished() {
        state.lock()
        finished = true
        chunks = []
        chunkHead = 0
        bufferedBytes = 0
        state.broadcast()
        state.unlock()
    }
}

/// Who is on the other end of a connection.
public struct Peer: Sendable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}
