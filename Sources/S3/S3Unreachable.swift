import Foundation

/// S3 could not be reached for longer than the outage tolerance: the call waited through the
/// outage and gives up, saying for how long S3 has been away, since when, and why.
public struct S3Unreachable: Error, Sendable, CustomStringConvertible {
    public let endpoint: String
    public let seconds: Double
    public let since: Date
    public let cause: String
    public let tolerance: Double

    public var description: String {
        let since = ISO8601DateFormatter().string(from: since)
        return "S3 at \(endpoint) has been unreachable for \(String(format: "%.0f", seconds)) s (since \(since)): \(cause); "
            + "calls wait up to --s3-outage-tolerance \(String(format: "%g", tolerance)) s"
    }
}
