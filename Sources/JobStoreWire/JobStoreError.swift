// The status codes and Toil kinds are generated from the proto into JobStoreStatus, the module
// below every layer that fails; whoever speaks the wire gets them with it.
@_exported import JobStoreStatus

/// A failed call as both sides of the wire see it: status code, Toil exception kind, message.
public struct JobStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var kind: ErrorKind
    public var message: String

    public init(_ code: StatusCode, _ message: String, kind: ErrorKind = .none) {
        self.code = code
        self.kind = kind
        self.message = message
    }

    public init(status: Status) {
        self.init(StatusCode(rawValue: UInt16(truncatingIfNeeded: status.code)) ?? .unknown,
                  status.message, kind: status.kind)
    }

    public var status: Status {
        Status(code: UInt32(code.rawValue), message: message, kind: kind)
    }

    public var description: String {
        kind == .none ? "\(code.name): \(message)" : "\(code.name) (\(kind)): \(message)"
    }
}
