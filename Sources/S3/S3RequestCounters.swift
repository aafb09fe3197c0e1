import Foundation
import Metrics
import Synchronization

/// Counts of the S3 requests a session sent, by S3 operation name: what operators read in Stats
/// and what tests count to prove that a cache saved a download.
///
/// Why per operation and not per HTTP method: a GET that lists a bucket, one that reads tags and
/// one that downloads an object cost differently and mean different things to an operator.
public final class S3RequestCounters: Sendable {
    /// One operation's figures. `requests` counts attempts (a retried request counts twice).
    public struct Figures: Sendable, Equatable {
        public var requests: UInt64 = 0
        /// Answers outside 2xx that the caller did not expect (after the last attempt).
        public var errors: UInt64 = 0
        /// Attempts that failed retryably and were tried again.
        public var retries: UInt64 = 0
        /// 503 SlowDown / 429 answers.
        public var throttled: UInt64 = 0
        /// 304 answers to conditional GETs (a cache entry was still current).
        public var notModified: UInt64 = 0
        public var bytesSent: UInt64 = 0
        public var bytesReceived: UInt64 = 0
        public var totalMicros: UInt64 = 0
        /// How long attempts took (each attempt, as `requests` counts them).
        public var latency = LatencyHistogram()
        public init() {}
    }

    private let figures = Mutex([String: Figures]())

    public init() {}

    func record(_ operation: String, _ update: (inout Figures) -> Void) {
        figures.withLock { update(&$0[operation, default: Figures()]) }
    }

    /// A copy of every operation's figures.
    public var snapshot: [String: Figures] { figures.withLock { $0 } }

    public func figures(_ operation: String) -> Figures { figures.withLock { $0[operation] ?? Figures() } }
}

/// The S3 API operation a request performs, named as AWS's API reference names it.
public enum S3Operation {
    public static func name(method: String, hasKey: Bool, query: [(String, String)], headers: [(String, String)]) -> String {
        let names = Set(query.map(\.0))
        let copy = headers.contains { $0.0.lowercased() == "x-amz-copy-source" }
        switch method {
        case "GET":
            if !hasKey { return names.contains("uploads") ? "ListMultipartUploads" : names.contains("versions") ? "ListObjectVersions" : "ListObjectsV2" }
            return names.contains("tagging") ? "GetObjectTagging" : "GetObject"
        case "HEAD": return hasKey ? "HeadObject" : "HeadBucket"
        case "PUT":
            if !hasKey { return names.contains("encryption") ? "PutBucketEncryption" : "CreateBucket" }
            if names.contains("tagging") { return "PutObjectTagging" }
            if names.contains("partNumber") { return copy ? "UploadPartCopy" : "UploadPart" }
            return copy ? "CopyObject" : "PutObject"
        case "POST":
            if names.contains("delete") { return "DeleteObjects" }
            if names.contains("uploads") { return "CreateMultipartUpload" }
            if names.contains("uploadId") { return "CompleteMultipartUpload" }
            return "POST"
        case "DELETE":
            if !hasKey { return "DeleteBucket" }
            return names.contains("uploadId") ? "AbortMultipartUpload" : "DeleteObject"
        default: return method
        }
    }
}
