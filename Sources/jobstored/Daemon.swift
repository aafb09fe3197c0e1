import ArgumentParser
import BuildVersion
import Foundation
import JobStoreCore
import JobStoreServer
import JobStoreWire
import Logging
import Metrics
import NodeCache
import ObjectStore
import S3

/// jobstored: the per-node daemon serving Toil job stores to every worker over a Unix socket.
@main
struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobstored",
        abstract: "Serve Toil job stores to every worker on this node over a Unix socket.",
        discussion: """
        Every option may also come from the environment, JOBSTORED_ + its name in capitals with '_' for '-' \
        (JOBSTORED_CACHE_SIZE=50GiB; repeatable options comma-separated; flags true/false), or from a \
        configuration file of `name = value` lines (--config, $JOBSTORED_CONFIG, else \(DaemonSettings.defaultConfigFile) \
        when it exists). The command line wins over the environment, the environment over the file. \
        --print-config shows the result and where each value came from.
        """,
        version: ReleaseVersion.current)

    @Option(help: "A configuration file of `name = value` lines (default: $JOBSTORED_CONFIG, else \(DaemonSettings.defaultConfigFile) if it exists).")
    var config: String?

    @Flag(help: "Print every setting, its value and where it came from (secrets masked), then exit.")
    var printConfig = false

    @Flag(help: "Check the S3 endpoint (TLS, credentials, a bucket listing), print one line, then exit (0: all work).")
    var checkEndpoint = false

    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; e.g. 127.0.0.1:9464).")
    var metrics: String?

    @Option(help: "Log lines as text or json (one object per line, for journald or a log shipper).")
    var logFormat: String = "text"

    @Option(help: "Socket path (default: $JOBSTORED_SOCKET, else $XDG_RUNTIME_DIR/jobstored.sock, else /tmp/jobstored-$UID/jobstored.sock).")
    var socket: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("allow-uid"), help: "Another uid allowed to connect (repeatable); the daemon's own uid always is.")
    var allowUIDs: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: "A gid whose members (primary or supplementary) may connect (repeatable).")
    var allowGIDs: [UInt32] = []

    @Option(name: .customLong("local-root"), help: "A directory local: stores must lie under (repeatable; default: anywhere this daemon's user may write). A daemon serving other users should set it.")
    var localRoots: [String] = []

    @Flag(help: "Skip fsync in local stores (faster; an interrupted write still leaves old or new content, but a power loss may lose recent writes).")
    var noFsync = false

    @Option(help: "Seconds to let calls in flight finish on SIGINT/SIGTERM.")
    var shutdownDeadline: Double = 30

    @Option(help: "Seconds a client may stall in the middle of a frame before its connection is closed.")
    var frameTimeout: Double = 30

    @Flag(help: "Replace a daemon serving the socket (an upgrade): new connections come here at once, the old daemon is sent SIGTERM and drains; its cache is taken over when it lets go.")
    var takeover = false

    @Option(help: "S3 endpoint URL for aws: stores (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS's regional endpoint).")
    var endpoint: String?

    @Option(help: "PEM file of CA certificates for the S3 endpoint's TLS (default: $AWS_CA_BUNDLE, else ca_bundle in ~/.aws/config, else the system's).")
    var caBundle: String?

    @Flag(help: "Do not verify the S3 endpoint's TLS certificate (tests only; logged as a warning).")
    var noVerifyTLS = false

    @Option(help: "S3 addressing: path (host/bucket/key), virtual (bucket.host/key), or auto (path for --endpoint, virtual for AWS).")
    var s3Addressing: String = "auto"

    @Option(help: "Maximum connections of the node's S3 session.")
    var s3MaxConnections: Int = 64

    @Option(help: "Part size of S3 transfers (5MiB to 5GiB; suffixes KiB, MiB, GiB): objects up to one part go in one request.")
    var partSize: String = "50MiB"

    @Option(help: "Part buffers shared by all S3 transfers: transfer memory is at most this many parts.")
    var transferBuffers: Int = 8

    @Option(help: "Parts of one S3 transfer moved in parallel.")
    var partConcurrency: Int = 4

    @Option(help: "Seconds an S3 transfer may move no byte before it is cancelled and retried.")
    var s3StallSeconds: Int = 30

    @Option(help: "Seconds of S3 outage (refused connections, resets, a gateway's 502/503/504) calls wait through, one probe at a time, before failing UNAVAILABLE (0: fail at once).")
    var s3OutageTolerance: Double = 120

    @Option(help: "Default lifetime, in seconds, of URLs from GetPublicUrl.")
    var urlExpiry: Int = 3600

    @Option(help: "Node cache directory for files of aws: stores (default: $XDG_CACHE_HOME/jobstored, else /var/tmp/jobstored-$UID).")
    var cacheDir: String?

    @Option(help: "Most bytes the node cache holds (suffixes KiB, MiB, GiB, TiB).")
    var cacheSize: String = "10GiB"

    @Option(help: "Free space to leave on the cache's filesystem, in percent.")
    var cacheMinFree: Double = 5

    @Option(help: "Serve a cached file without revalidating it for this many seconds after it was checked (0: always revalidate).")
    var cacheTrustSeconds: Double = 0

    @Flag(help: "Run without the node cache: every read downloads.")
    var noCache = false

    func validate() throws {
        for root in localRoots where !root.hasPrefix("/") {
            throw ValidationError("--local-root must be an absolute path, not \(root)")
        }
    }

    /// Merges the environment and the configuration file under the command line, then runs.
    static func main() {
        let layers: ConfigurationLayers
        do {
            layers = try ConfigurationLayers(commandLine: Array(CommandLine.arguments.dropFirst()),
                                             environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("jobstored: error: \(error)\n".utf8))
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot(layers.arguments)
            if let daemon = command as? Daemon {
                try daemon.run(layers: layers)
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    func run() throws {
        try run(layers: ConfigurationLayers(commandLine: [], environment: [:], fileExists: { _ in false }))
    }

    func run(layers: ConfigurationLayers) throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        guard let format = LogFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format must be text or json, not \(logFormat)")
        }
        let metricsAddress = try metrics.map { text in
            guard let address = MetricsHTTPServer.parseAddress(text) else {
                throw ValidationError("--metrics must be HOST:PORT such as 127.0.0.1:9464, not \(text)")
            }
            return address
        }
        if printConfig {
            print(try configurationReport(layers), terminator: "")
            return
        }
        if checkEndpoint {
            let (line, ok) = try endpointCheck()
            print(line)
            if !ok { throw ExitCode(1) }
            return
        }
        LoggingSystem.bootstrap { label in format.handler(label: label, level: level) }
        let logger = Logger(label: "jobstored")
        for warning in layers.warnings { logger.warning("\(warning)") }
        if let file = layers.configFile { logger.info("configuration file \(file)") }
        signal(SIGPIPE, SIG_IGN)
        // Handle termination signals on this thread only: block them before any thread starts.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let passed = try SocketActivation.passedListener()
        let path = try passed.flatMap(SocketActivation.path(of:)) ?? socket ?? SocketPath.defaultPath(preparingDirectory: true)
        let stats = ServerStats()
        let (backend, stores) = try backends(outageEvents: { event in
            // All three at warning: an operator who filters at warning sees the outage end too.
            logger.warning("\(event)")
        })
        logTLS(stores.session.tls, logger: logger)
        // Listen first: from here on connections queue for this daemon (none is refused).
        let listener: SocketServer.PreparedListener
        do {
            if let passed {
                listener = passed
                logger.notice("serving the socket systemd passed: \(path)")
            } else {
                listener = try SocketServer.prepareListener(path: path, takeover: takeover)
            }
        } catch {
            logger.critical("cannot serve \(path): \(error)")
            throw ExitCode(2)
        }
        if let old = listener.replacedPID {
            logger.notice("took over \(path) from pid \(old); asking it to drain")
            kill(old, SIGTERM)
        } else if listener.replacedLiveDaemon {
            logger.warning("took over \(path) from a daemon whose pid is not visible here (another PID namespace): it is not signalled; stop it yourself, it drains on SIGTERM")
        }
        let replacing = listener.replacedLiveDaemon
        let cache = try nodeCache(logger: logger, lockWait: replacing ? shutdownDeadline + 10 : 0)
        if cache != nil || (noCache && !replacing) {
            try? FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
            Self.abortLeftoverUploads(stores, logger: logger)
        }
        let registry = StoreRegistry(backend: backend, cache: cache)
        let counters = stores.counters
        let handler = JobStoreHandler(registry: registry, stats: stats, logger: logger, defaultURLExpiry: urlExpiry,
                                      external: DaemonExternalObjects(stores: stores),
                                      backendRequests: { Self.backendRequests(counters) },
                                      s3Session: { Self.s3Session(stores) })
        let server = SocketServer(path: path, service: handler, stats: stats, logger: logger,
                                  allowedUIDs: Set(allowUIDs), allowedGIDs: Set(allowGIDs), midFrameTimeout: frameTimeout)
        let metricsEndpoint = MetricsEndpoint()
        if let metricsAddress {
            let page = MetricsPage(stats: stats, handler: handler, counters: counters)
            // A daemon taken over from keeps its port until it begins to drain: wait for it.
            let patience = listener.replacedPID == nil ? 0 : shutdownDeadline + 10
            do {
                try metricsEndpoint.start(host: metricsAddress.host, port: metricsAddress.port, retryFor: patience,
                                          logger: logger, render: { page.render() })
            } catch {
                logger.critical("\(error)")
                throw ExitCode(2)
            }
        }
        do {
            try server.start(listeningOn: listener)
        } catch {
            logger.critical("cannot serve \(path): \(error)")
            throw ExitCode(2)
        }
        var received: Int32 = 0
        sigwait(&signals, &received)
        logger.info("received signal \(received); draining calls in flight (deadline \(shutdownDeadline)s)")
        // The metrics port first: a daemon taking over binds it while this one drains.
        metricsEndpoint.stop()
        let left = server.shutdown(deadline: shutdownDeadline)
        if left > 0 { throw ExitCode(1) }
        cache?.close()
    }

    /// The node cache, or nil with --no-cache or when another daemon holds the directory (a
    /// daemon taking over from one still draining runs uncached rather than not at all).
    func nodeCache(logger: Logger, lockWait: Double) throws -> NodeCache? {
        guard !noCache else { return nil }
        guard let capacity = ByteCount.parse(cacheSize), capacity > 0 else {
            throw ValidationError("--cache-size must be a positive size such as 10GiB, not \(cacheSize)")
        }
        guard cacheMinFree >= 0, cacheMinFree < 100 else { throw ValidationError("--cache-min-free must be a percentage below 100") }
        guard cacheTrustSeconds >= 0 else { throw ValidationError("--cache-trust-seconds must not be negative") }
        let directory = cacheDirectory
        let configuration = NodeCache.Configuration(directory: directory, capacity: UInt64(capacity),
                                                    minFreeFraction: cacheMinFree / 100, trustSeconds: cacheTrustSeconds,
                                                    isExecutable: JobStore.isExecutable)
        var waiting = configuration
        waiting.lockWaitSeconds = lockWait
        do {
            return try NodeCache(waiting, logger: logger)
        } catch let error as CacheError {
            logger.warning("running without a node cache: \(error)")
            return nil
        }
    }

    /// The node's state directory: the cache's entries and the journal of open uploads.
    var cacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        return cacheDir ?? env["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? "\($0)/jobstored" : nil }
            ?? "/var/tmp/jobstored-\(geteuid())"
    }

    static func backendRequests(_ counters: S3RequestCounters) -> [BackendRequestStats] {
        counters.snapshot.sorted { $0.key < $1.key }.map { operation, f in
            BackendRequestStats(operation: operation, requests: f.requests, errors: f.errors, retries: f.retries,
                                throttled: f.throttled, notModified: f.notModified, bytesSent: f.bytesSent,
                                bytesReceived: f.bytesReceived, totalMicros: f.totalMicros)
        }
    }

    /// local: stores on this node; aws: stores through one S3 session for the whole daemon.
    /// `outageEvents` nil: calls never wait through an S3 outage (`--check-endpoint` answers at once).
    func backends(outageEvents: (@Sendable (S3Reachability.Event) -> Void)? = nil) throws -> (StoreRegistry.BackendFactory, S3Stores) {
        let local = StoreRegistry.localOnly(durable: !noFsync)
        let roots = localRoots.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        let env = ProcessInfo.processInfo.environment
        let endpointText = endpoint ?? env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"]
        var endpointURL: URL?
        if let endpointText {
            guard let url = URL(string: endpointText), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ValidationError("invalid S3 endpoint \(endpointText)")
            }
            endpointURL = url
        }
        guard let partBytes = ByteCount.parse(partSize), partBytes >= 5 << 20, partBytes <= 5 << 30 else {
            throw ValidationError("--part-size must be between 5MiB and 5GiB, not \(partSize)")
        }
        guard transferBuffers >= 1, partConcurrency >= 1 else {
            throw ValidationError("--transfer-buffers and --part-concurrency must be at least 1")
        }
        guard ["auto", "path", "virtual"].contains(s3Addressing) else {
            throw ValidationError("--s3-addressing must be auto, path or virtual, not \(s3Addressing)")
        }
        let pathStyle = s3Addressing == "path" || (s3Addressing == "auto" && endpointURL != nil)
        guard s3MaxConnections >= 1 else { throw ValidationError("--s3-max-connections must be at least 1") }
        guard s3StallSeconds >= 1 else { throw ValidationError("--s3-stall-seconds must be at least 1") }
        guard s3OutageTolerance >= 0, s3OutageTolerance.isFinite else {
            throw ValidationError("--s3-outage-tolerance must be a number of seconds, 0 or more")
        }
        let session = CurlSession(maxConnections: s3MaxConnections, stallSeconds: s3StallSeconds, tls: try tlsSettings(),
                                  proxies: ProxySettings.resolve(environment: env))
        let pool = BufferPool(partSize: partBytes, capacity: transferBuffers)
        let chain = CredentialChain(session: session)
        let credentials: @Sendable () throws -> AWSCredentials = {
            do {
                return try chain.credentials()
            } catch let e as CredentialsError {
                throw ObjectStoreError.permissionDenied(e.message)
            }
        }
        let stores = S3Stores(session: session, pool: pool, partConcurrency: partConcurrency, endpoint: endpointURL,
                              pathStyle: pathStyle, journal: UploadJournal(path: cacheDirectory + "/uploads.journal"),
                              outageTolerance: outageEvents == nil ? 0 : s3OutageTolerance, onOutageEvent: outageEvents ?? { _ in },
                              credentials: credentials)
        let factory: StoreRegistry.BackendFactory = { locator in
            switch locator {
            case .local(let path):
                try Self.checkLocalRoot(path, roots: roots)
                return try local(locator)
            case .aws(let region, _): return stores.store(region: region)
            }
        }
        return (factory, stores)
    }
}

extension Daemon {
    /// With `--local-root`, a local: store must be one of the roots or lie under one (locators
    /// never hold '.' or '..' components, so a prefix test on whole components is exact).
    static func checkLocalRoot(_ path: String, roots: [String]) throws {
        guard !roots.isEmpty else { return }
        let allowed = roots.contains { root in path == root || path.hasPrefix(root == "/" ? "/" : root + "/") }
        guard allowed else {
            throw JobStoreFailure(.permissionDenied, "This daemon serves local: stores only under \(roots.joined(separator: ", ")), not \(path).")
        }
    }
}
