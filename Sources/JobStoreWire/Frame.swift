/// The kind of a frame, byte 10 of its header.
public enum FrameType: UInt8, Sendable {
    case request = 1
    case response = 2
    case data = 3
    case end = 4
    case cancel = 5
}

/// The fixed 12-byte header in front of every frame (big-endian):
/// `u32 payload_length | u32 call_id | u16 code | u8 frame_type | u8 flags`.
public struct FrameHeader: Sendable, Equatable {
    public static let size = 12
    /// flags bit 0: one file descriptor travels with this frame (SCM_RIGHTS).
    public static let flagFD: UInt8 = 1

    public var payloadLength: UInt32
    public var callID: UInt32
    /// REQUEST: the method id; RESPONSE: the status code; otherwise 0.
    public var code: UInt16
    /// The raw type byte; `type` is nil for a value no version of the protocol defines.
    public var rawType: UInt8
    public var flags: UInt8

    public init(payloadLength: UInt32, callID: UInt32, code: UInt16, type: FrameType, flags: UInt8 = 0) {
        self.payloadLength = payloadLength
        self.callID = callID
        self.code = code
        self.rawType = type.rawValue
        self.flags = flags
    }

    public var type: FrameType? { FrameType(rawValue: rawType) }
    public var carriesFD: Bool { flags & Self.flagFD != 0 }

    public func encode(into p: UnsafeMutableRawBufferPointer) {
        p.storeBytes(of: payloadLength.bigEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: callID.bigEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: code.bigEndian, toByteOffset: 8, as: UInt16.self)
        p[10] = rawType
        p[11] = flags
    }

    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.size) { buffer, count in
            encode(into: UnsafeMutableRawBufferPointer(buffer))
            count = Self.size
        }
    }

    public init(decoding p: UnsafeRawBufferPointer) {
        precondition(p.count >= Self.size)
        payloadLength = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        callID = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        code = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        rawType = p[10]
        flags = p[11]
    }
}

/// Size limits every peer enforces.
public enum WireLimits {
    /// Largest protobuf payload of a REQUEST, RESPONSE or END frame.
    public static let maxMessageBytes = 16 << 20
    /// Largest DATA frame payload.
    public static let maxDataBytes = 1 << 20
    /// The protocol version Hello reports.
    public static let protocolVersion: UInt32 = 1
}

/// One frame as read from a socket: header, payload and, when flagged, the passed descriptor.
public struct Frame: Sendable {
    public var header: FrameHeader
    public var payload: [UInt8]
    /// The received descriptor; the receiver owns it and must close it.
    public var fd: Int32?

    public init(header: FrameHeader, payload: [UInt8], fd: Int32? = nil) {
        self.header = header
        self.payload = payload
        self.fd = fd
    }
}
