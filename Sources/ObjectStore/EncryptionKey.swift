#if canImport(Glibc)
import Glibc
#endif

/// A customer-provided encryption key (SSE-C): exactly 32 bytes, never logged or printed.
///
/// Why a class with its own buffer: a Swift array's storage cannot be wiped when it goes away,
/// so the key's bytes live in memory this type owns and zeroes on deinit (a core dump taken
/// later holds no copy of it). Callers that receive a key in a buffer they own should zero that
/// buffer after making this value. The SHA-256 `digest` names the key (cache entries, job
/// bodies kept in memory) without revealing it.
public final class EncryptionKey: Sendable, Equatable, CustomStringConvertible {
    public static let length = 32

    private nonisolated(unsafe) let storage: UnsafeMutableBufferPointer<UInt8>
    /// Lower-case hex SHA-256 of the key.
    public let digest: String

    /// Nil unless `bytes` holds exactly 32 bytes.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count == Self.length else { return nil }
        storage = .allocate(capacity: Self.length)
        _ = storage.initialize(from: bytes.bindMemory(to: UInt8.self))
        let sha = SHA256Digest()
        sha.update(UnsafeRawBufferPointer(storage))
        digest = sha.finalizeHex()
    }

    /// Nil unless `bytes` holds exactly 32 bytes.
    public convenience init?(bytes: [UInt8]) {
        let made: EncryptionKey? = bytes.withUnsafeBytes { EncryptionKey($0) }
        guard let made else { return nil }
        self.init(made)
    }

    private init(_ other: EncryptionKey) {
        storage = .allocate(capacity: Self.length)
        _ = storage.initialize(from: other.storage)
        digest = other.digest
    }

    deinit {
        explicit_bzero(storage.baseAddress!, Self.length)
        storage.deallocate()
    }

    /// Lends the key's bytes; do not let them escape the closure.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    public static func == (a: EncryptionKey, b: EncryptionKey) -> Bool { a.digest == b.digest }

    public var description: String { "EncryptionKey(<redacted>)" }
}
