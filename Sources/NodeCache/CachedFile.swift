import CFileCopy
import Foundation
import ObjectStore
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// A cache entry held open for one reader: while it is held the entry is pinned and never
/// evicted or removed. `release()` (or deinit) unpins it.
public final class CachedFile: @unchecked Sendable {
    /// The entry's data file (read-only): a reader may hard-link it while it holds this.
    public let path: String
    /// The object's info as the store reported it when the entry was filled.
    public let info: ObjectInfo
    let entry: CacheEntry
    private let fd: Int32
    private weak var cache: NodeCache?
    private var released = false

    init(entry: CacheEntry, path: String, fd: Int32, cache: NodeCache) {
        self.entry = entry
        self.path = path
        self.info = entry.manifest.info
        self.fd = fd
        self.cache = cache
    }

    deinit { release() }

    /// Unpins the entry; keeps it from eviction for `lease` more seconds (a path handed to a
    /// client that will link it).
    public func release(lease: Double = 0) {
        guard !released else { return }
        released = true
        close(fd)
        cache?.unpin(entry, lease: lease)
    }

    /// Copies the entry into `sink`: straight between files (copy_file_range, else sendfile)
    /// when the sink is a file descriptor, in 1 MiB reads otherwise.
    public func copy(into sink: any ByteSink) throws {
        let size = info.size
        if let target = sink as? FileDescriptorSink, try copyInKernel(to: target.fd, size: size) {
            cache?.served(size)
            return
        }
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while offset < size {
            let n = SystemCall.retryingInterrupts { pread(fd, buffer.baseAddress, Int(min(UInt64(chunk), size - offset)), off_t(offset)) }
            if n < 0 {
                throw ObjectStoreError.io("read cache entry \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw ObjectStoreError.dataLoss("cache entry \(path) is shorter than \(size) bytes") }
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += UInt64(n)
        }
        cache?.served(size)
    }

    /// False when neither call applies to this pair of descriptors (nothing was written then).
    private func copyInKernel(to target: Int32, size: UInt64) throws -> Bool {
        var offset: Int64 = 0  // long long
        var useSendfile = false
        while UInt64(offset) < size {
            let want = Int(min(size - UInt64(offset), 1 << 30))
            let n: Int
            if useSendfile {
                var o = off_t(offset)
                n = SystemCall.retryingInterrupts { sendfile(target, fd, &o, want) }
                if n > 0 { offset = Int64(o) }
            } else {
                n = SystemCall.retryingInterrupts { jobstore_copy_file_range(fd, &offset, target, want) }
            }
            if n > 0 { continue }
            if n == 0 { throw ObjectStoreError.dataLoss("cache entry \(path) is shorter than \(size) bytes") }
            let nothingWritten = offset == 0
            if !useSendfile && nothingWritten && [EXDEV, EINVAL, ENOSYS, EBADF, EOPNOTSUPP].contains(errno) {
                useSendfile = true
                continue
            }
            if useSendfile && nothingWritten && [EINVAL, ENOSYS, EBADF].contains(errno) { return false }
            throw ObjectStoreError.sinkFailed("copy to the reader's file: \(String(cString: strerror(errno)))")
        }
        return true
    }
}
