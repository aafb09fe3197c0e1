import CProtobufC
#if canImport(Glibc)
import Glibc
#endif

/// A protobuf message that travels in a frame's payload. Generated structs conform; the
/// encoding itself is protobuf-c's, so every language agrees byte for byte.
public protocol WireMessage: Sendable {
    /// The message in protobuf binary encoding.
    func serialized() -> [UInt8]
    /// Decodes protobuf binary encoding; throws on malformed input, never traps.
    init(serialized bytes: UnsafeRawBufferPointer) throws(WireDecodingError)
    /// Whether a string field holds a NUL, which protobuf-c cannot carry.
    var containsNUL: Bool { get }
}

extension WireMessage {
    public init(serialized bytes: [UInt8]) throws(WireDecodingError) {
        let result: Result<Self, WireDecodingError> = bytes.withUnsafeBytes { raw in
            do throws(WireDecodingError) { return .success(try Self(serialized: raw)) } catch { return .failure(error) }
        }
        self = try result.get()
    }
}

/// A payload that protobuf-c could not decode as the expected message.
public struct WireDecodingError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { "payload is not a valid \(message) message" }
}

/// Owns every C allocation made while converting one Swift message to its protobuf-c struct,
/// and frees them all at once when the message has been packed.
public final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []
    /// Copies of `@secret` fields, zeroed before they are freed.
    private var secrets: [ProtobufCBinaryData] = []

    public init() {}

    deinit {
        for s in secrets { Self.wipe(s) }
        for p in allocations { free(p) }
    }

    /// A copy of a `@secret` bytes field, wiped when the arena goes.
    public func secretBytes(_ b: [UInt8]) -> ProtobufCBinaryData {
        let data = bytes(b)
        secrets.append(data)
        return data
    }

    /// Zeroes a decoded `@secret` field's bytes before protobuf-c frees them.
    public static func wipe(_ b: ProtobufCBinaryData) {
        if let data = b.data, b.len > 0 { explicit_bzero(data, b.len) }
    }

    private func raw(_ bytes: Int) -> UnsafeMutableRawPointer {
        let p = malloc(max(bytes, 1))!
        allocations.append(p)
        return p
    }

    public func allocate<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        raw(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
    }

    public func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        var s = s
        return s.withUTF8 { utf8 in
            let p = raw(utf8.count + 1).bindMemory(to: CChar.self, capacity: utf8.count + 1)
            utf8.withMemoryRebound(to: CChar.self) { src in
                if let base = src.baseAddress { p.update(from: base, count: src.count) }
            }
            p[utf8.count] = 0
            return p
        }
    }

    public func strings(_ list: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        array(list.map { Optional(string($0)) })
    }

    public func bytes(_ b: [UInt8]) -> ProtobufCBinaryData {
        let p = raw(b.count).bindMemory(to: UInt8.self, capacity: b.count)
        b.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { p.update(from: base, count: src.count) }
        }
        return ProtobufCBinaryData(len: b.count, data: p)
    }

    public func array<T>(_ items: [T]) -> UnsafeMutablePointer<T> {
        let p = raw(MemoryLayout<T>.stride * items.count).bindMemory(to: T.self, capacity: items.count)
        p.initialize(from: items, count: items.count)
        return p
    }

    public static func string(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: strlen(p)), as: UTF8.self)
    }

    public static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        string(UnsafePointer(p))
    }

    public static func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard let data = b.data, b.len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }
}
