/// Where a job store lives, parsed from its locator string.
///
/// `aws:REGION:NAME` is parsed and validated exactly as Toil 9.6's
/// `parse_jobstore_identifier` does (same checks, same order, same messages); the bucket is
/// `NAME--toil`. `local:/abs/path` is the embedded default, a directory on this node.
public enum Locator: Sendable, Hashable, CustomStringConvertible {
    case local(path: String)
    case aws(region: String, name: String)

    /// Toil's `EC2Regions.keys()`, in Toil's order (its error message lists them).
    public static let awsRegions = [
        "us-west-1", "us-west-2", "us-east-1", "us-east-2", "us-gov-west-1", "ca-central-1",
        "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
        "ap-south-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "sa-east-1",
    ]

    public init(_ locator: String) throws(JobStoreError) {
        guard let colon = locator.firstIndex(of: ":") else {
            throw Self.invalid("Invalid job store locator '\(locator)': expected local:/PATH or aws:REGION:NAME.")
        }
        let type = locator[..<colon]
        let rest = String(locator[locator.index(after: colon)...])
        switch type {
        case "local":
            guard rest.hasPrefix("/") else {
                throw Self.invalid("A local job store path must be absolute: '\(rest)'.")
            }
            guard !rest.utf8.contains(0), rest.utf8.count < 3800 else {
                throw Self.invalid("Invalid local job store path: \(rest.debugDescription).")
            }
            var path = rest
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            guard path != "/", !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
                throw Self.invalid("A local job store path must name a directory without '.' or '..': '\(rest)'.")
            }
            self = .local(path: path)
        case "aws":
            self = try Self.parseAWS(rest)
        default:
            throw Self.invalid("Unsupported job store type '\(type)' in '\(locator)': expected local:/PATH or aws:REGION:NAME.")
        }
    }

    private static func parseAWS(_ identifier: String) throws(JobStoreError) -> Locator {
        let parts = identifier.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count < 2 { throw invalid("not enough values to unpack (expected 2, got \(parts.count))") }
        if parts.count > 2 { throw invalid("too many values to unpack (expected 2)") }
        let (region, name) = (parts[0], parts[1])
        guard awsRegions.contains(region) else {
            let listed = awsRegions.map { "'\($0)'" }.joined(separator: ", ")
            throw invalid("AWS Region \"\(region)\" is not one of: dict_keys([\(listed)])")
        }
        let length = name.unicodeScalars.count
        guard (3...56).contains(length) else {
            throw invalid("AWS jobstore name must be between 3 and 56 chars: \(name) (len: \(length))")
        }
        let allowed = name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
        guard allowed, name.first != "-", name.last != "-" else {
            throw invalid("Invalid AWS jobstore name: '\(name)'.  Must contain only digits, lower-case letters, and hyphens.  Must also not start or end in a hyphen.")
        }
        guard !name.contains("--") else {
            throw invalid("AWS jobstore names may not contain '--': \(name)")
        }
        return .aws(region: region, name: name)
    }

    private static func invalid(_ message: String) -> JobStoreError {
        JobStoreError(.invalidLocator, message)
    }

    /// The bucket (S3) or directory (local) holding the store.
    public var bucket: String {
        switch self {
        case .local(let path): path
        case .aws(_, let name): "\(name)--toil"
        }
    }

    public var description: String {
        switch self {
        case .local(let path): "local:\(path)"
        case .aws(let region, let name): "aws:\(region):\(name)"
        }
    }
}
