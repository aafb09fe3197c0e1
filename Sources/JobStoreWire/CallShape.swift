/// How a call's bytes travel, decided by `stream` in the proto.
public enum CallShape: Sendable {
    /// REQUEST, then the terminal RESPONSE.
    case unary
    /// REQUEST, DATA frames from the client, END; then the terminal RESPONSE.
    case upload
    /// REQUEST; DATA frames from the server, then the terminal RESPONSE.
    case download
}

/// Whether a file descriptor travels with a method's REQUEST frame (`@fd request` in the proto).
public enum FDPassing: Sendable {
    case none
    case required
    case optional
}
