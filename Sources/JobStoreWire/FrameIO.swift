import Synchronization
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// Reads frames from a stream socket, buffering bytes and collecting passed descriptors.
///
/// A descriptor arrives (SCM_RIGHTS) together with the first bytes of the frame it was sent
/// with, so received descriptors queue in arrival order and a frame flagged with one takes
/// the oldest. Not thread-safe: one reader per socket.
public final class FrameReader {
    public let fd: Int32
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var pendingFDs: [Int32] = []
    /// Room for a control message of up to 8 descriptors, kept for every receive.
    private var control = [UInt8](repeating: 0, count: MemoryLayout<cmsghdr>.size + 8 * MemoryLayout<Int32>.size)
    /// More unclaimed descriptors than this means a confused or hostile peer.
    private static let maxPendingFDs = 64

    /// Seconds a peer may go silent in the middle of a frame before the read fails (a
    /// slow-loris client holds nothing for long); between frames a connection may idle forever.
    public let midFrameTimeout: Double

    public init(fd: Int32, bufferSize: Int = 256 << 10, midFrameTimeout: Double = 30) {
        self.fd = fd
        self.buffer = [UInt8](repeating: 0, count: bufferSize)
        self.midFrameTimeout = midFrameTimeout
    }

    deinit {
        for d in pendingFDs { close(d) }
    }

    /// Whether bytes of a next frame have arrived (buffered here or waiting in the socket),
    /// without blocking.
    public var hasPendingInput: Bool {
        if end > start { return true }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0
    }

    /// The next frame, or nil at a clean end of stream (EOF between frames).
    /// `maxPayload` bounds what it accepts for each frame type; larger frames throw.
    public func next(maxPayload: (FrameHeader) -> Int) throws(SocketError) -> Frame? {
        guard try fill(FrameHeader.size, eofOK: true) else { return nil }
        let header = buffer.withUnsafeBytes { FrameHeader(decoding: UnsafeRawBufferPointer(rebasing: $0[start..<start + FrameHeader.size])) }
        start += FrameHeader.size
        let length = Int(header.payloadLength)
        guard length <= maxPayload(header) else {
            throw SocketError("frame of \(length) bytes exceeds the limit for frame type \(header.rawType)")
        }
        var payload = [UInt8]()
        if length > 0 {
            payload.reserveCapacity(length)
            var remaining = length
            while remaining > 0 {
                if start == end { _ = try fill(1, eofOK: false) }
                let n = min(remaining, end - start)
                payload.append(contentsOf: buffer[start..<start + n])
                start += n
                remaining -= n
            }
        }
        var passed: Int32?
        if header.carriesFD {
            guard !pendingFDs.isEmpty else { throw SocketError("frame flagged with a descriptor arrived without one") }
            passed = pendingFDs.removeFirst()
        }
        return Frame(header: header, payload: payload, fd: passed)
    }

    /// Ensures `count` bytes are buffered. Returns false at EOF with nothing buffered when `eofOK`.
    private func fill(_ count: Int, eofOK: Bool) throws(SocketError) -> Bool {
        while end - start < count {
            if start > 0 && start == end { start = 0; end = 0 }
            if buffer.count - end < count {
                buffer.withUnsafeMutableBytes { p in
                    p.baseAddress!.copyMemory(from: p.baseAddress! + start, byteCount: end - start)
                }
                end -= start
                start = 0
            }
            if !(eofOK && end == start) { try awaitBytes() }
            let n = try receive()
            if n == 0 {
                if eofOK && end == start { return false }
                throw SocketError("connection closed in the middle of a frame")
            }
        }
        return true
    }

    /// Waits up to `midFrameTimeout` for the peer to send more of a frame it began.
    private func awaitBytes() throws(SocketError) {
        func now() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = now() + midFrameTimeout
        while true {
            let left = deadline - now()
            guard left > 0 else { throw SocketError("no byte for \(Int(midFrameTimeout)) s in the middle of a frame") }
            let r = SystemCall.retryingInterrupts { poll(&p, 1, Int32(min(left * 1000, 60_000).rounded(.up))) }
            if r > 0 { return }
            if r < 0 { throw SocketError("poll", errno: errno) }
        }
    }

    private func receive() throws(SocketError) -> Int {
        let space = buffer.count - end
        while true {
            let (n, controlLength, truncated): (Int, Int, Bool) = buffer.withUnsafeMutableBytes { raw in
                control.withUnsafeMutableBytes { ctl in
                    var iov = iovec(iov_base: raw.baseAddress! + end, iov_len: space)
                    return withUnsafeMutablePointer(to: &iov) { iovp in
                        var msg = msghdr()
                        msg.msg_iov = iovp
                        msg.msg_iovlen = 1
                        msg.msg_control = ctl.baseAddress
                        msg.msg_controllen = ctl.count
                        let n = SystemCall.retryingInterrupts { recvmsg(fd, &msg, Int32(MSG_CMSG_CLOEXEC)) }
                        return (n, Int(msg.msg_controllen), msg.msg_flags & Int32(MSG_CTRUNC) != 0)
                    }
                }
            }
            if n < 0 {
                throw SocketError("recvmsg", errno: errno)
            }
            collectDescriptors(control, length: controlLength)
            if truncated { throw SocketError("too many descriptors passed in one message") }
            guard pendingFDs.count <= Self.maxPendingFDs else { throw SocketError("too many unclaimed descriptors") }
            end += n
            return n
        }
    }

    private func collectDescriptors(_ control: [UInt8], length: Int) {
        let headerSize = MemoryLayout<cmsghdr>.size
        let align = MemoryLayout<Int>.size
        var offset = 0
        control.withUnsafeBytes { raw in
            while offset + headerSize <= length {
                let header = raw.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
                let cmsgLength = Int(header.cmsg_len)
                guard cmsgLength >= headerSize, offset + cmsgLength <= length else { break }
                if header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS) {
                    let count = (cmsgLength - headerSize) / MemoryLayout<Int32>.size
                    for i in 0..<count {
                        pendingFDs.append(raw.loadUnaligned(fromByteOffset: offset + headerSize + i * 4, as: Int32.self))
                    }
                }
                offset += (cmsgLength + align - 1) & ~(align - 1)
            }
        }
    }
}

/// Writes whole frames to a stream socket; one lock per socket keeps frames from interleaving
/// when many calls answer at once.
public final class FrameWriter: Sendable {
    public let fd: Int32
    private let lock = Mutex(())

    public init(fd: Int32) {
        self.fd = fd
    }

    /// Sends one frame (header, payload, and optionally one descriptor) atomically with respect
    /// to other frames on this socket. The caller keeps ownership of `passing`.
    public func send(_ header: FrameHeader, payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                     passing descriptor: Int32? = nil) throws(SocketError) {
        var header = header
        header.payloadLength = UInt32(payload.count)
        if descriptor != nil { header.flags |= FrameHeader.flagFD } else { header.flags &= ~FrameHeader.flagFD }
        // The header on the stack: no allocation on the path of every answer.
        let result: SocketError? = withUnsafeTemporaryAllocation(byteCount: FrameHeader.size, alignment: 8) { head in
            header.encode(into: head)
            return lock.withLock { _ in sendAll(UnsafeRawBufferPointer(head), payload, descriptor: descriptor) }
        }
        if let result { throw result }
    }

    public func send(_ header: FrameHeader, payload: [UInt8], passing descriptor: Int32? = nil) throws(SocketError) {
        let r: SocketError? = payload.withUnsafeBytes { p in
            do throws(SocketError) { try send(header, payload: p, passing: descriptor); return nil } catch { return error }
        }
        if let r { throw r }
    }

    /// Sends `bytes` as DATA frames of the call, each at most `WireLimits.maxDataBytes`.
    public func sendData(callID: UInt32, _ bytes: UnsafeRawBufferPointer) throws(SocketError) {
        var offset = 0
        while offset < bytes.count {
            let n = min(WireLimits.maxDataBytes, bytes.count - offset)
            try send(FrameHeader(payloadLength: 0, callID: callID, code: 0, type: .data),
                     payload: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
            offset += n
        }
    }

    private func sendAll(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer, descriptor: Int32?) -> SocketError? {
        var sentHead = 0
        var sentBody = 0
        var descriptorSent = descriptor == nil
        let headerSize = MemoryLayout<cmsghdr>.size
        var control = descriptor == nil ? [] : [UInt8](repeating: 0, count: headerSize + MemoryLayout<Int>.size)
        if let descriptor {
            control.withUnsafeMutableBytes { raw in
                var cm = cmsghdr()
                cm.cmsg_len = headerSize + MemoryLayout<Int32>.size
                cm.cmsg_level = SOL_SOCKET
                cm.cmsg_type = Int32(SCM_RIGHTS)
                raw.storeBytes(of: cm, toByteOffset: 0, as: cmsghdr.self)
                raw.storeBytes(of: descriptor, toByteOffset: headerSize, as: Int32.self)
            }
        }
        while sentHead < head.count || sentBody < body.count {
            var iovs = (iovec(), iovec())
            var count = 0
            if sentHead < head.count {
                iovs.0 = iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress! + sentHead), iov_len: head.count - sentHead)
                count = 1
            }
            if sentBody < body.count {
                let body = iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress! + sentBody), iov_len: body.count - sentBody)
                if count == 0 { iovs.0 = body } else { iovs.1 = body }
                count += 1
            }
            let n: Int = withUnsafeMutablePointer(to: &iovs) { pair in
                control.withUnsafeMutableBytes { ctl in
                    var msg = msghdr()
                    msg.msg_iov = UnsafeMutableRawPointer(pair).assumingMemoryBound(to: iovec.self)
                    msg.msg_iovlen = count
                    if !descriptorSent {
                        msg.msg_control = ctl.baseAddress
                        msg.msg_controllen = ctl.count
                    }
                    return SystemCall.retryingInterrupts { sendmsg(fd, &msg, Int32(MSG_NOSIGNAL)) }
                }
            }
            if n < 0 {
                return SocketError("sendmsg", errno: errno)
            }
            descriptorSent = true
            let fromHead = min(n, head.count - sentHead)
            sentHead += fromHead
            sentBody += n - fromHead
        }
        return nil
    }
}
