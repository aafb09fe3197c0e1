#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// Where an upload's bytes come from: a passed file descriptor, a socket's DATA frames, memory.
/// `read` fills the buffer with up to its count bytes; 0 means the end of the body.
/// Throwing means the body is incomplete and nothing may be stored.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Where a download's bytes go.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Forgets every byte written so far, when it can (memory; a regular file), so that a read
    /// whose bytes were damaged on the way can be done again. False when bytes already left.
    func rewind() -> Bool
}

extension ByteSink {
    public func rewind() -> Bool { false }
}

/// Bytes already in memory (jobs, shared files, tests).
public final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        if n > 0 {
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
            }
            offset += n
        }
        return n
    }

}

/// Collects a download in memory.
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    /// Refuse to grow beyond this many bytes.
    private let limit: Int

    public init(limit: Int = Int.max) { self.limit = limit }

    public func rewind() -> Bool {
        bytes.removeAll(keepingCapacity: true)
        return true
    }

    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard bytes.count + chunk.count <= limit else {
            throw ObjectStoreError.sinkFailed("more than \(limit) bytes")
        }
        bytes.append(contentsOf: chunk)
    }
}

/// Reads a file descriptor from its current offset to its end. Does not close it.
public final class FileDescriptorSource: ByteSource {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = SystemCall.retryingInterrupts { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if n >= 0 { return n }
        throw ObjectStoreError.sourceFailed("read: \(String(cString: strerror(errno)))")
    }
}

/// Writes to a file descriptor at its current offset. Does not close it.
public final class FileDescriptorSink: ByteSink {
    public let fd: Int32
    /// Where writing began (-1: not seekable, a pipe or socket).
    private let start: off_t
    public init(fd: Int32) {
        self.fd = fd
        start = lseek(fd, 0, SEEK_CUR)
    }

    /// Truncates a regular file back to where writing began.
    public func rewind() -> Bool {
        guard start >= 0 else { return false }
        return ftruncate(fd, start) == 0 && lseek(fd, start, SEEK_SET) == start
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = SystemCall.retryingInterrupts { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                throw ObjectStoreError.sinkFailed("write: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}
