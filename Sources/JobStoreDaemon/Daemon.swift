import ArgumentParser
import Foundation
import JobStoreCore
import JobStoreServer
import JobStoreWire
import Logging
import NodeCache
import ObjectStore
import S3
import Synchronization

/// The per-node daemon: one S3 session, one node cache and one socket server for every worker.
///
/// Why a library type rather than the executable's body: a test starts one in-process
/// (`start`, calls, `drain`, `stop`) and the process entry point is only `run`, which adds what
/// belongs to a process — the log's bootstrap, the signal wait, the exit status.
public final class Daemon: Sendable {
    public let configuration: DaemonConfiguration
    let logger: Logger
    private let lifecycle = Mutex(DaemonLifecycle())
    private let parts = Mutex<Parts?>(nil)
    private let metricsEndpoint = MetricsEndpoint()

    /// What a start made, released by `stop`.
    private struct Parts: @unchecked Sendable {
        var server: SocketServer
        var cache: NodeCache?
        var path: String
    }

    public init(configuration: DaemonConfiguration, logger: Logger = Logger(label: "jobstored")) {
        self.configuration = configuration
        self.logger = logger
    }

    public var state: DaemonLifecycle.State { lifecycle.withLock { $0.state } }

    /// The socket being served (empty before a start).
    public var socketPath: String { parts.withLock { $0?.path ?? "" } }

    /// A start that failed: the message an operator acts on (exit status 2 from `run`).
    public struct StartFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Listens, opens the cache and serves; returns once connections are accepted. The socket
    /// is `listener` (systemd's), else `--socket`, else the default path.
    public func start(listener passed: SocketServer.PreparedListener? = nil) throws {
        try lifecycle.withLock { try $0.beginStart() }
        do {
            let made = try makeParts(passed)
            parts.withLock { $0 = made }
            try lifecycle.withLock { try $0.finishStart(succeeded: true) }
        } catch {
            try? lifecycle.withLock { try $0.finishStart(succeeded: false) }
            metricsEndpoint.stop()
            throw error
        }
    }

    private func makeParts(_ passed: SocketServer.PreparedListener?) throws -> Parts {
        let c = configuration
        let path = try passed.flatMap(SocketActivation.path(of:)) ?? c.socketPath ?? SocketPath.defaultPath(preparingDirectory: true)
        let stats = ServerStats()
        let logger = self.logger
        let (backend, stores) = try DaemonBackends.make(c, outageEvents: { event in
            // All three at warning: an operator who filters at warning sees the outage end too.
            logger.warning("\(event)")
        })
        logTLS(stores.session.tls)
        // Listen first: from here on connections queue for this daemon (none is refused).
        let listener: SocketServer.PreparedListener
        do {
            if let passed {
                listener = passed
                logger.notice("serving the socket systemd passed: \(path)")
            } else {
                listener = try SocketServer.prepareListener(path: path, takeover: c.takeover)
            }
        } catch {
            throw StartFailure(description: "cannot serve \(path): \(error)")
        }
        do {
            return try serve(listener, path: path, stats: stats, backend: backend, stores: stores)
        } catch {
            // Nothing will accept on it: close it and take its socket file away again.
            listener.discard()
            throw error
        }
    }

    /// The rest of a start, once the socket listens: the cache, the handler, the metrics
    /// endpoint and the accept loop. A failure here leaves the listener to the caller.
    private func serve(_ listener: SocketServer.PreparedListener, path: String, stats: ServerStats,
                       backend: @escaping StoreRegistry.BackendFactory, stores: S3Stores) throws -> Parts {
        let c = configuration
        if let old = listener.replacedPID {
            logger.notice("took over \(path) from pid \(old); asking it to drain")
            kill(old, SIGTERM)
        } else if listener.replacedLiveDaemon {
            logger.warning("took over \(path) from a daemon whose pid is not visible here (another PID namespace): it is not signalled; stop it yourself, it drains on SIGTERM")
        }
        let replacing = listener.replacedLiveDaemon
        let cache = try nodeCache(lockWait: replacing ? c.shutdownDeadline + 10 : 0)
        if cache != nil || (c.cache == nil && !replacing) {
            try? FileManager.default.createDirectory(atPath: c.cacheDirectory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
            LeftoverUploads.abort(stores, logger: logger)
        }
        let registry = StoreRegistry(backend: backend, cache: cache)
        let counters = stores.counters
        let handler = JobStoreHandler(registry: registry, stats: stats, logger: logger, defaultURLExpiry: c.urlExpiry,
                                      external: DaemonExternalObjects(stores: stores),
                                      backendRequests: { BackendRequestStats.of(counters) },
                                      s3Session: { S3SessionStats(stores) })
        let server = SocketServer(path: path, service: handler, stats: stats, logger: logger,
                                  allowedUIDs: c.allowedUIDs, allowedGIDs: c.allowedGIDs, midFrameTimeout: c.frameTimeout)
        do {
            if let address = c.metricsAddress {
                let page = MetricsPage(stats: stats, handler: handler, counters: counters)
                // A daemon taken over from keeps its port until it begins to drain: wait for it.
                let patience = listener.replacedPID == nil ? 0 : c.shutdownDeadline + 10
                do {
                    try metricsEndpoint.start(host: address.host, port: address.port, retryFor: patience,
                                              logger: logger, render: { page.render() })
                } catch {
                    throw StartFailure(description: "\(error)")
                }
            }
            do {
                try server.start(listeningOn: listener)
            } catch {
                throw StartFailure(description: "cannot serve \(path): \(error)")
            }
        } catch {
            // The cache's lock is let go, so that a start after this one gets the cache.
            cache?.close()
            throw error
        }
        return Parts(server: server, cache: cache, path: path)
    }

    /// Stops accepting and lets calls in flight finish for up to `deadline` seconds; returns how
    /// many were cut off. Idempotent: a second drain returns 0 at once.
    @discardableResult
    public func drain(deadline: Double? = nil) throws -> Int {
        guard try lifecycle.withLock({ try $0.beginDrain() }), let server = parts.withLock({ $0?.server }) else { return 0 }
        // The metrics port first: a daemon taking over binds it while this one drains.
        metricsEndpoint.stop()
        let left = server.shutdown(deadline: deadline ?? configuration.shutdownDeadline)
        try lifecycle.withLock { try $0.finishDrain() }
        return left
    }

    /// Drains if serving, then lets go of the cache (its lock passes to a daemon taking over).
    public func stop() throws {
        try drain()
        let cache = parts.withLock { parts -> NodeCache? in
            defer { parts?.cache = nil }
            return parts?.cache
        }
        cache?.close()
    }

    /// The node cache, or nil with --no-cache or when another daemon holds the directory (a
    /// daemon taking over from one still draining runs uncached rather than not at all).
    func nodeCache(lockWait: Double) throws -> NodeCache? {
        guard var waiting = configuration.cache else { return nil }
        waiting.lockWaitSeconds = lockWait
        do {
            return try NodeCache(waiting, logger: logger)
        } catch let error as CacheError {
            logger.warning("running without a node cache: \(error)")
            return nil
        }
    }

    func logTLS(_ tls: TLSSettings) {
        if !tls.verify {
            logger.warning("TLS certificates of S3 endpoints are NOT verified (--no-verify-tls): for tests only")
        } else if tls.caBundle != nil {
            logger.info("TLS: \(tls.summary)")
        }
    }
}

extension Daemon {
    /// The process's whole life: log set-up, start, wait for SIGINT or SIGTERM, drain, stop.
    /// Exit status 2 when it cannot start, 1 when calls were still in flight at the deadline.
    public static func run(_ configuration: DaemonConfiguration, layers: ConfigurationLayers) throws {
        let format = configuration.logFormat
        let level = configuration.logLevel
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

        let daemon = Daemon(configuration: configuration, logger: logger)
        do {
            try daemon.start(listener: SocketActivation.passedListener())
        } catch let failure as StartFailure {
            logger.critical("\(failure)")
            throw ExitCode(2)
        }
        var received: Int32 = 0
        sigwait(&signals, &received)
        logger.info("received signal \(received); draining calls in flight (deadline \(configuration.shutdownDeadline)s)")
        let left = try daemon.drain()
        try daemon.stop()
        if left > 0 { throw ExitCode(1) }
    }
}
