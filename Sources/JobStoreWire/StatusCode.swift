/// A call's outcome, numbered as gRPC numbers it so that every client maps it the same way.
public enum StatusCode: UInt16, Sendable, CaseIterable {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    /// The gRPC name, as clients show it ("NOT_FOUND").
    public var name: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }
}

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
