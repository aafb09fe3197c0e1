import Foundation

/// Standard base64 (with padding), for Content-MD5 and SSE-C key headers.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!), count: bytes.count,
             deallocator: .none).base64EncodedString()
    }
}
