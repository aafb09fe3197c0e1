#if canImport(Glibc)
import Glibc
#endif

/// Where an upload's bytes come from: a passed file descriptor, a socket's DATA frames, memory.
/// `read` fills the buffer with up to its count bytes; 0 means the end of the body.
/// Throwing means the body is incomplete and nothing may be stored.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A source that can be read again from its first byte (a regular file, memory). A store that
/// must know a trailing checksum before it sends (S3 multipart metadata is fixed when the upload
/// is created) reads such a source twice instead of copying the object in place afterwards.
public protocol RewindableByteSource: ByteSource {
    /// Whether `rewind` can work (a pipe passed as a file cannot); ask before the first pass.
    var isRewindable: Bool { get }
    /// Returns to the first byte; false when this source cannot.
    func rewind() -> Bool
}

/// Where a download's bytes go.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Bytes already in memory (jobs, shared files, tests).
public final class MemorySource: RewindableByteSource {
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

    public var isRewindable: Bool { true }

    public func rewind() -> Bool {
        offset = 0
        return true
    }
}

/// Collects a download in memory.
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    /// Refuse to grow beyond this many bytes.
    private let limit: Int

    public init(limit: Int = Int.max) { self.limit = limit }

    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard bytes.count + chunk.count <= limit else {
            throw ObjectStoreError.sinkFailed("more than \(limit) bytes")
        }
        bytes.append(contentsOf: chunk)
    }
}

/// Reads a file descriptor from its current offset to its end. Does not close it.
/// Rewindable when the descriptor is a regular file.
public final class FileDescriptorSource: RewindableByteSource {
    public let fd: Int32
    /// Where reading started, for `rewind`; nil when the descriptor cannot seek.
    private let start: off_t?

    public init(fd: Int32) {
        self.fd = fd
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
            let here = lseek(fd, 0, SEEK_CUR)
            start = here >= 0 ? here : nil
        } else {
            start = nil
        }
    }

    public var isRewindable: Bool { start != nil }

    public func rewind() -> Bool {
        guard let start else { return false }
        return lseek(fd, start, SEEK_SET) == start
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw ObjectStoreError.sourceFailed("read: \(String(cString: strerror(errno)))")
        }
    }
}

/// Writes to a file descriptor at its current offset. Does not close it.
public final class FileDescriptorSink: ByteSink {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ObjectStoreError.sinkFailed("write: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}
