import COpenSSL
import Foundation
import ObjectStore

/// HMAC-SHA256 (RFC 2104) over ObjectStore's SHA256Digest, whose algorithm is fetched once per
/// process. OpenSSL 3's EVP_MAC looks the digest up by name at every init (and the one-shot
/// `HMAC()` fetches both): with four to five HMACs per signed request that was a visible share
/// of the daemon's CPU, where two digests over a prefetched algorithm cost about a microsecond.
public enum Crypto {
    private static let blockSize = 64

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var block = key.count > blockSize ? digest(key) : key
        block += [UInt8](repeating: 0, count: blockSize - block.count)
        let inner = digest(block.map { $0 ^ 0x36 }, data)
        return digest(block.map { $0 ^ 0x5C }, inner)
    }

    /// SHA-256 of `first` followed by `second`.
    static func digest(_ first: [UInt8], _ second: [UInt8] = []) -> [UInt8] {
        let d = SHA256Digest()
        d.update(first)
        d.update(second)
        return d.finalizeBytes()
    }

    public static func hmacSHA256(key: [UInt8], _ text: String) -> [UInt8] {
        hmacSHA256(key: key, Array(text.utf8))
    }

    /// Hex SHA-256 of `data`, as SigV4 writes payload and request hashes.
    public static func sha256Hex(_ data: [UInt8]) -> String {
        SHA256Digest.hex(of: data)
    }

    public static func sha256Hex(_ data: ArraySlice<UInt8>) -> String {
        let d = SHA256Digest()
        data.withUnsafeBytes { d.update($0) }
        return d.finalizeHex()
    }
}
