/// A failed job-store operation, as every layer above storage and both sides of the wire see
/// it: a status code, Toil's exception kind where Toil has one, and a message safe to show.
///
/// Why one type: the error carries what the wire sends (as hummingbird's `HTTPResponseError`
/// carries its status), so a failure is built once where it happens — a storage error is
/// translated once, in the core (`JobStore.translate`) — and the server sends it as it is.
/// The codes and kinds are the proto's own (Generated/Status.swift).
public struct JobStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var kind: ErrorKind
    public var message: String

    public init(_ code: StatusCode, _ message: String, kind: ErrorKind = .none) {
        self.code = code
        self.kind = kind
        self.message = message
    }

    /// A failure of a Toil kind, with the status that kind always travels with (`@status`).
    public init(_ kind: ErrorKind, _ message: String) {
        self.init(kind.status ?? .unknown, message, kind: kind)
    }

    public var description: String {
        kind == .none ? "\(code.name): \(message)" : "\(code.name) (\(kind)): \(message)"
    }
}
