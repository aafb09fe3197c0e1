import Foundation
import ObjectStore

/// A place outside the store that ImportFile reads and ExportFile writes, parsed from a URL.
public enum TransferURL: Sendable, Equatable {
    case s3(bucket: String, key: String)
    case http(String)
    case file(path: String)

    public init(_ text: String) throws(JobStoreError) {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else {
            throw JobStoreError(.invalidArgument, "Not a URL: \(text.debugDescription).")
        }
        switch scheme {
        case "s3":
            let bucket = url.host ?? ""
            let key = String(url.percentEncodedPath.dropFirst()).removingPercentEncoding ?? ""
            guard !bucket.isEmpty, !key.isEmpty, !key.hasSuffix("/") else {
                throw JobStoreError(.invalidArgument, "An s3 URL needs a bucket and an object key: \(text).")
            }
            self = .s3(bucket: bucket, key: key)
        case "http", "https":
            guard url.host?.isEmpty == false else { throw JobStoreError(.invalidArgument, "No host in \(text).") }
            self = .http(text)
        case "file":
            guard url.host == nil || url.host == "" || url.host == "localhost" else {
                throw JobStoreError(.invalidArgument, "A file URL must name a local path (file:///PATH): \(text).")
            }
            let path = url.path
            guard path.hasPrefix("/"), !path.hasSuffix("/") else {
                throw JobStoreError(.invalidArgument, "A file URL must name an absolute path to a file: \(text).")
            }
            self = .file(path: path)
        default:
            throw JobStoreError(.invalidArgument, "Unsupported URL scheme '\(scheme)' in \(text): expected s3, http, https or file.")
        }
    }

    /// The last path component, used as the imported file's basename (as Toil does).
    var basename: String {
        let path: String = switch self {
        case .s3(_, let key): key
        case .http(let text): URLComponents(string: text)?.path ?? ""
        case .file(let path): path
        }
        let last = path.split(separator: "/").last.map(String.init) ?? ""
        return last.isEmpty || last == "." || last == ".." ? "imported" : last
    }
}

/// What the daemon reaches outside a job store: the object stores behind s3:// URLs (on its one
/// S3 session) and http(s) downloads. Provided by the daemon; JobStoreCore knows no S3 details.
public protocol ExternalObjects: Sendable {
    /// The store that serves `bucket` for s3:// URLs.
    func s3Store(forBucket bucket: String) throws -> any ObjectStore
    /// Streams the body of an http(s) URL into `sink`; returns its size.
    func download(_ url: String, into sink: any ByteSink) throws -> UInt64
}

/// Who asked: file:// URLs are opened by the daemon itself, so only for its own uid.
public struct TransferCaller: Sendable {
    public var mayUseLocalFiles: Bool
    public var description: String
    public init(mayUseLocalFiles: Bool, description: String) {
        self.mayUseLocalFiles = mayUseLocalFiles
        self.description = description
    }
}
