import Foundation
import ObjectStore
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// A temporary file becoming an entry, and the cache space it holds. Space is reserved before
/// bytes are written, in steps, so the cap holds while many fills grow at once.
final class PendingEntry: @unchecked Sendable {
    /// The temporary file, made at the first byte (a revalidation that gets a 304 makes none).
    private var file: (fd: Int32, path: String)?
    private(set) var written: UInt64 = 0
    private(set) var reserved: UInt64 = 0
    private unowned let cache: NodeCache
    private var closed = false
    static let reservationStep: UInt64 = 8 << 20

    init(cache: NodeCache) {
        self.cache = cache
    }

    deinit { discard() }

    /// Reserves room for `total` bytes in all (a fill that knows the object's size).
    func reserve(total: UInt64) throws {
        guard total > reserved else { return }
        try cache.reserve(total - reserved)
        reserved = total
    }

    private func opened() throws -> (fd: Int32, path: String) {
        if let file { return file }
        do {
            let made = try cache.directory.createTemporary()
            file = made
            return made
        } catch {
            throw CacheBypass(reason: "\(error)")
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        let needed = written + UInt64(bytes.count)
        if needed > reserved {
            try reserve(total: max(needed, reserved + Self.reservationStep))
        }
        let fd = try opened().fd
        var done = 0
        while done < bytes.count {
            let n = SystemCall.retryingInterrupts { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                throw CacheBypass(reason: "cache write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        written = needed
    }

    /// Closes the file (making it if no byte came: an empty object), keeping it for publishing;
    /// returns the reservation, which the publisher hands back to the cache.
    func finish() throws -> (path: String, reserved: UInt64) {
        let file = try opened()
        if !closed { close(file.fd); closed = true }
        let r = reserved
        reserved = 0
        return (file.path, r)
    }

    /// Drops the file and its reservation (idempotent).
    func discard() {
        if let file {
            if !closed { close(file.fd); closed = true }
            unlink(file.path)
        }
        if reserved > 0 {
            cache.unreserve(reserved)
            reserved = 0
        }
    }
}

/// The sink a download fills an entry through.
final class CacheFillSink: ByteSink {
    let pending: PendingEntry
    init(_ pending: PendingEntry) { self.pending = pending }
    func write(_ bytes: UnsafeRawBufferPointer) throws { try pending.write(bytes) }
}

/// Puts a file being uploaded from this node into the cache as its bytes pass: `append` every
/// chunk, then `commit` with what the store answered, or `abandon`. Never fails the upload:
/// when the cache cannot take the file (too big, no room, disk error) it just stops copying.
public final class CacheWriter: @unchecked Sendable {
    private let key: CacheKey
    private let secretDigest: String
    private let epoch: UInt64
    private var pending: PendingEntry?
    private unowned let cache: NodeCache
    private var done = false

    init(cache: NodeCache, key: CacheKey, secretDigest: String, epoch: UInt64, pending: PendingEntry) {
        self.cache = cache
        self.key = key
        self.secretDigest = secretDigest
        self.epoch = epoch
        self.pending = pending
    }

    deinit { abandon() }

    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let pending else { return }
        do {
            try pending.write(bytes)
        } catch {
            cache.log("write-through of \(key) stopped: \(error)")
            cache.count { $0.bypassed += 1 }
            pending.discard()
            self.pending = nil
        }
    }

    /// The upload succeeded: the copy becomes the entry for the object's new version.
    public func commit(_ info: ObjectInfo, sha256: String) {
        guard !done else { return }
        done = true
        guard let pending, pending.written == info.size else {
            pending?.discard()
            pending = nil
            cache.invalidate(key)
            cache.finishedOperation()
            return
        }
        self.pending = nil
        cache.publishWrite(pending, key: key, info: info, sha256: sha256, secretDigest: secretDigest, since: epoch)
    }

    /// The upload failed: nothing enters the cache.
    public func abandon() {
        guard !done else { return }
        done = true
        pending?.discard()
        pending = nil
        cache.finishedOperation()
    }
}

/// An upload's source that hands every chunk to a CacheWriter on its way to the store.
public final class WriteThroughSource: ByteSource {
    private let inner: any ByteSource
    private let writer: CacheWriter

    public init(_ inner: any ByteSource, writer: CacheWriter) {
        self.inner = inner
        self.writer = writer
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        if n > 0 { writer.append(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
        return n
    }
}
