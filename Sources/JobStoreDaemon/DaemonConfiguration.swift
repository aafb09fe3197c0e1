import Foundation
import JobStoreCore
import Logging
import Metrics
import NodeCache
import S3

/// Everything a daemon runs with, checked: one value built from `DaemonOptions` (the flags,
/// the `JOBSTORED_*` environment and the file, already merged) and the process environment.
///
/// Why one value: the checks used to be spread over the command's `validate`, `run`, the cache's
/// and the backends' set-up, so a bad value surfaced at different moments depending on the
/// mode. Now every check is in `init`, each with its test (`DaemonConfigurationValidationTests`),
/// and `Daemon` only consumes values. What is checked here is the values themselves; resources
/// they name (a CA bundle file, the socket's directory, the cache's lock) are met at start.
public struct DaemonConfiguration: Sendable {
    /// A setting's value is unusable: a usage error, told in one sentence naming the setting.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var metricsAddress: MetricsAddress?
    /// The socket named by `--socket`; nil: systemd's, else the default path (resolved at start).
    public var socketPath: String?
    public var allowedUIDs: Set<UInt32>
    public var allowedGIDs: Set<UInt32>
    /// Absolute, without a trailing slash (but "/" itself).
    public var localRoots: [String]
    public var durable: Bool
    public var shutdownDeadline: Double
    public var frameTimeout: Double
    public var takeover: Bool
    public var endpoint: URL?
    /// Unchecked: a bundle that cannot be read fails the start, not the configuration.
    public var tls: TLSSettings
    public var proxies: ProxySettings
    public var pathStyle: Bool
    public var s3MaxConnections: Int
    public var partSize: Int
    public var transferBuffers: Int
    public var partConcurrency: Int
    public var s3StallSeconds: Int
    public var s3OutageTolerance: Double
    public var urlExpiry: Int
    /// The node's state directory: the cache's entries and the journal of open uploads.
    public var cacheDirectory: String
    /// nil with `--no-cache`.
    public var cache: NodeCache.Configuration?
    /// The region of `--check-endpoint`'s listing and of s3:// URLs with an explicit endpoint.
    public var defaultRegion: String

    /// `--metrics HOST:PORT`, parsed once here so that a bad address fails at start, not at bind.
    public struct MetricsAddress: Sendable, Equatable {
        public var host: String
        public var port: UInt16

        public init(host: String, port: UInt16) {
            self.host = host
            self.port = port
        }
    }

    public init(_ options: DaemonOptions, environment: [String: String]) throws(Invalid) {
        guard let level = Logger.Level(rawValue: options.logLevel) else { throw Invalid("unknown log level \(options.logLevel)") }
        guard let format = LogFormat(rawValue: options.logFormat) else {
            throw Invalid("--log-format must be text or json, not \(options.logFormat)")
        }
        logLevel = level
        logFormat = format
        metricsAddress = try options.metrics.map { text throws(Invalid) in
            guard let address = MetricsHTTPServer.parseAddress(text) else {
                throw Invalid("--metrics must be HOST:PORT such as 127.0.0.1:9464, not \(text)")
            }
            return MetricsAddress(host: address.host, port: address.port)
        }
        for root in options.localRoots where !root.hasPrefix("/") {
            throw Invalid("--local-root must be an absolute path, not \(root)")
        }
        localRoots = options.localRoots.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        socketPath = options.socket
        allowedUIDs = Set(options.allowUIDs)
        allowedGIDs = Set(options.allowGIDs)
        durable = !options.noFsync
        guard options.shutdownDeadline >= 0, options.shutdownDeadline.isFinite else {
            throw Invalid("--shutdown-deadline must be a number of seconds, 0 or more")
        }
        guard options.frameTimeout > 0, options.frameTimeout.isFinite else {
            throw Invalid("--frame-timeout must be a positive number of seconds")
        }
        shutdownDeadline = options.shutdownDeadline
        frameTimeout = options.frameTimeout
        takeover = options.takeover

        if let text = options.endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"] {
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw Invalid("invalid S3 endpoint \(text)")
            }
            endpoint = url
        } else {
            endpoint = nil
        }
        tls = TLSSettings.resolve(caBundle: options.caBundle, noVerify: options.noVerifyTLS, environment: environment)
        proxies = ProxySettings.resolve(environment: environment)
        guard let partBytes = ByteCount.parse(options.partSize), partBytes >= 5 << 20, partBytes <= 5 << 30 else {
            throw Invalid("--part-size must be between 5MiB and 5GiB, not \(options.partSize)")
        }
        partSize = partBytes
        guard options.transferBuffers >= 1, options.partConcurrency >= 1 else {
            throw Invalid("--transfer-buffers and --part-concurrency must be at least 1")
        }
        transferBuffers = options.transferBuffers
        partConcurrency = options.partConcurrency
        guard ["auto", "path", "virtual"].contains(options.s3Addressing) else {
            throw Invalid("--s3-addressing must be auto, path or virtual, not \(options.s3Addressing)")
        }
        pathStyle = options.s3Addressing == "path" || (options.s3Addressing == "auto" && endpoint != nil)
        guard options.s3MaxConnections >= 1 else { throw Invalid("--s3-max-connections must be at least 1") }
        guard options.s3StallSeconds >= 1 else { throw Invalid("--s3-stall-seconds must be at least 1") }
        guard options.s3OutageTolerance >= 0, options.s3OutageTolerance.isFinite else {
            throw Invalid("--s3-outage-tolerance must be a number of seconds, 0 or more")
        }
        s3MaxConnections = options.s3MaxConnections
        s3StallSeconds = options.s3StallSeconds
        s3OutageTolerance = options.s3OutageTolerance
        // S3 presigns for at most 7 days.
        guard (1...604_800).contains(options.urlExpiry) else {
            throw Invalid("--url-expiry must be between 1 and 604800 seconds (7 days), not \(options.urlExpiry)")
        }
        urlExpiry = options.urlExpiry

        cacheDirectory = options.cacheDir ?? environment["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? "\($0)/jobstored" : nil }
            ?? "/var/tmp/jobstored-\(geteuid())"
        guard let capacity = ByteCount.parse(options.cacheSize), capacity > 0 else {
            throw Invalid("--cache-size must be a positive size such as 10GiB, not \(options.cacheSize)")
        }
        guard options.cacheMinFree >= 0, options.cacheMinFree < 100 else { throw Invalid("--cache-min-free must be a percentage below 100") }
        guard options.cacheTrustSeconds >= 0 else { throw Invalid("--cache-trust-seconds must not be negative") }
        cache = options.noCache ? nil : NodeCache.Configuration(directory: cacheDirectory, capacity: UInt64(capacity),
                                                                minFreeFraction: options.cacheMinFree / 100,
                                                                trustSeconds: options.cacheTrustSeconds,
                                                                isExecutable: JobStore.isExecutable)
        defaultRegion = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
    }

    /// With `--local-root`, a local: store must be one of the roots or lie under one (locators
    /// never hold '.' or '..' components, so a prefix test on whole components is exact).
    public func checkLocalRoot(_ path: String) throws {
        guard !localRoots.isEmpty else { return }
        let allowed = localRoots.contains { root in path == root || path.hasPrefix(root == "/" ? "/" : root + "/") }
        guard allowed else {
            throw JobStoreError(.permissionDenied, "This daemon serves local: stores only under \(localRoots.joined(separator: ", ")), not \(path).")
        }
    }
}
