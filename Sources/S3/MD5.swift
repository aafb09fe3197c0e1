import COpenSSL
import Foundation
import ObjectStore

/// MD5, for S3's Content-MD5 header (a transport check, not a security one).
public enum MD5 {
    nonisolated(unsafe) private static let algorithm: OpaquePointer = EVP_MD_fetch(nil, "MD5", nil)!

    public static func digest(_ data: [UInt8]) -> [UInt8] {
        digest(data[...])
    }

    public static func digest(_ data: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        data.withUnsafeBufferPointer { d in _ = EVP_Digest(d.baseAddress, d.count, &out, &length, algorithm, nil) }
        return out
    }

    public static func digest(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        _ = EVP_Digest(data.baseAddress, data.count, &out, &length, algorithm, nil)
        return out
    }
}
