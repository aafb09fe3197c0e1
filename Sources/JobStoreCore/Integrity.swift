import ObjectStore

/// Computes the SHA-256 of an upload as it streams, for the object's metadata.
/// Used by one thread at a time: the upload reads it, then the store asks for the digest.
final class ChecksummingSource: ByteSource, @unchecked Sendable {
    private let inner: any ByteSource
    private let digest = SHA256Digest()
    private(set) var byteCount: UInt64 = 0

    init(_ inner: any ByteSource) { self.inner = inner }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        digest.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        byteCount += UInt64(n)
        return n
    }

    func finalizeHex() -> String { digest.finalizeHex() }
}

/// Computes the SHA-256 of a download as it streams, to compare with the object's metadata.
final class VerifyingSink: ByteSink {
    private let inner: any ByteSink
    private let digest = SHA256Digest()
    private(set) var byteCount: UInt64 = 0

    init(_ inner: any ByteSink) { self.inner = inner }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        digest.update(bytes)
        byteCount += UInt64(bytes.count)
        try inner.write(bytes)
    }

    /// The SHA-256 of the bytes written (once they all were).
    var sha256Hex: String { digest.finalizeHex() }

    /// Throws DATA_LOSS when the object recorded a checksum (or size) its bytes do not match.
    /// Objects written by Toil itself carry no checksum; their size is still checked.
    func verify(_ info: ObjectInfo, what: String) throws {
        guard byteCount == info.size else {
            throw JobStoreError(.dataLoss, "\(what): read \(byteCount) bytes, the store recorded \(info.size)")
        }
        if let expected = info.metadata[Keys.Meta.sha256] {
            let actual = digest.finalizeHex()
            guard actual == expected else {
                throw JobStoreError(.dataLoss, "\(what): content checksum mismatch (stored sha256 \(expected), read \(actual))")
            }
        }
    }
}

/// Holds back up to `limit` bytes of a download until it was verified, so that a small object
/// whose bytes were damaged on the way can be read again before anything reached a reader that
/// cannot take bytes back (a socket stream). Larger downloads flow once past the limit.
final class HoldBackSink: ByteSink {
    private let inner: any ByteSink
    private let limit: Int
    private var held: [UInt8] = []
    private var flowing = false

    init(_ inner: any ByteSink, limit: Int = 8 << 20) {
        self.inner = inner
        self.limit = limit
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if flowing { return try inner.write(bytes) }
        held.append(contentsOf: bytes)
        if held.count > limit { try release() }
    }

    func rewind() -> Bool {
        if flowing { return inner.rewind() }
        held.removeAll(keepingCapacity: true)
        return true
    }

    /// Sends what is held (the download was verified, or is too large to hold).
    func release() throws {
        flowing = true
        let bytes = held
        held = []
        if !bytes.isEmpty { try bytes.withUnsafeBytes { try inner.write($0) } }
    }
}
