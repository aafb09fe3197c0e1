import ArgumentParser

/// jobstored's settings as ArgumentParser declares them: the flags layer of the configuration
/// (the environment and the file are merged into the same argument list first, by
/// `ConfigurationLayers`). Raw values only; `DaemonConfiguration` checks and resolves them.
///
/// Why here and not in the executable: `DaemonConfiguration(options)` is then testable
/// in-process, and the one list of names is next to the table (`DaemonSettings`) that the
/// layers read and `DaemonSettingsTests` checks against `--help`.
public struct DaemonOptions: ParsableArguments {
    public init() {}

    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; e.g. 127.0.0.1:9464).")
    public var metrics: String?

    @Option(help: "Log lines as text or json (one object per line, for journald or a log shipper).")
    public var logFormat: String = "text"

    @Option(help: "Socket path (default: $JOBSTORED_SOCKET, else $XDG_RUNTIME_DIR/jobstored.sock, else /tmp/jobstored-$UID/jobstored.sock).")
    public var socket: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    @Option(name: .customLong("allow-uid"), help: "Another uid allowed to connect (repeatable); the daemon's own uid always is.")
    public var allowUIDs: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: "A gid whose members (primary or supplementary) may connect (repeatable).")
    public var allowGIDs: [UInt32] = []

    @Option(name: .customLong("local-root"), help: "A directory local: stores must lie under (repeatable; default: anywhere this daemon's user may write). A daemon serving other users should set it.")
    public var localRoots: [String] = []

    @Flag(help: "Skip fsync in local stores (faster; an interrupted write still leaves old or new content, but a power loss may lose recent writes).")
    public var noFsync = false

    @Option(help: "Seconds to let calls in flight finish on SIGINT/SIGTERM.")
    public var shutdownDeadline: Double = 30

    @Option(help: "Seconds a client may stall in the middle of a frame before its connection is closed.")
    public var frameTimeout: Double = 30

    @Flag(help: "Replace a daemon serving the socket (an upgrade): new connections come here at once, the old daemon is sent SIGTERM and drains; its cache is taken over when it lets go.")
    public var takeover = false

    @Option(help: "S3 endpoint URL for aws: stores (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS's regional endpoint).")
    public var endpoint: String?

    @Option(help: "PEM file of CA certificates for the S3 endpoint's TLS (default: $AWS_CA_BUNDLE, else ca_bundle in ~/.aws/config, else the system's).")
    public var caBundle: String?

    @Flag(help: "Do not verify the S3 endpoint's TLS certificate (tests only; logged as a warning).")
    public var noVerifyTLS = false

    @Option(help: "S3 addressing: path (host/bucket/key), virtual (bucket.host/key), or auto (path for --endpoint, virtual for AWS).")
    public var s3Addressing: String = "auto"

    @Option(help: "Maximum connections of the node's S3 session.")
    public var s3MaxConnections: Int = 64

    @Option(help: "Part size of S3 transfers (5MiB to 5GiB; suffixes KiB, MiB, GiB): objects up to one part go in one request.")
    public var partSize: String = "50MiB"

    @Option(help: "Part buffers shared by all S3 transfers: transfer memory is at most this many parts.")
    public var transferBuffers: Int = 8

    @Option(help: "Parts of one S3 transfer moved in parallel.")
    public var partConcurrency: Int = 4

    @Option(help: "Seconds an S3 transfer may move no byte before it is cancelled and retried.")
    public var s3StallSeconds: Int = 30

    @Option(help: "Seconds of S3 outage (refused connections, resets, a gateway's 502/503/504) calls wait through, one probe at a time, before failing UNAVAILABLE (0: fail at once).")
    public var s3OutageTolerance: Double = 120

    @Option(help: "Default lifetime, in seconds, of URLs from GetPublicUrl.")
    public var urlExpiry: Int = 3600

    @Option(help: "Node cache directory for files of aws: stores (default: $XDG_CACHE_HOME/jobstored, else /var/tmp/jobstored-$UID).")
    public var cacheDir: String?

    @Option(help: "Most bytes the node cache holds (suffixes KiB, MiB, GiB, TiB).")
    public var cacheSize: String = "10GiB"

    @Option(help: "Free space to leave on the cache's filesystem, in percent.")
    public var cacheMinFree: Double = 5

    @Option(help: "Serve a cached file without revalidating it for this many seconds after it was checked (0: always revalidate).")
    public var cacheTrustSeconds: Double = 0

    @Flag(help: "Run without the node cache: every read downloads.")
    public var noCache = false
}
