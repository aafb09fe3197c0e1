import COpenSSL

/// Incremental SHA-256 (OpenSSL EVP), used to checksum every transfer end to end.
/// The algorithm is fetched once per process; each digest dups a context from it.
public final class SHA256Digest {
    nonisolated(unsafe) private static let algorithm: OpaquePointer = EVP_MD_fetch(nil, "SHA256", nil)!
    private let context: OpaquePointer
    private var final: String?

    public init() {
        context = EVP_MD_CTX_new()!
        EVP_DigestInit_ex2(context, Self.algorithm, nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest as 64 lower-case hex characters; the digest cannot be updated afterwards.
    public func finalizeHex() -> String {
        if let final { return final }
        final = Self.hex(finalizeBytes())
        return final!
    }

    /// The 32 digest bytes; call once, and not together with `finalizeHex`.
    public func finalizeBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var chars = [UInt8]()
        chars.reserveCapacity(bytes.count * 2)
        for b in bytes {
            chars.append(digits[Int(b >> 4)])
            chars.append(digits[Int(b & 15)])
        }
        return String(decoding: chars, as: UTF8.self)
    }

    public static func hex(of bytes: [UInt8]) -> String {
        let d = SHA256Digest()
        d.update(bytes)
        return d.finalizeHex()
    }
}
