import ArgumentParser
import Foundation
import JobStoreCore
import JobStoreServer
import JobStoreWire
import Logging
import ObjectStore

/// jobstored: the per-node daemon serving Toil job stores to every worker over a Unix socket.
@main
struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobstored",
        abstract: "Serve Toil job stores to every worker on this node over a Unix socket.",
        version: JobStore.version)

    @Option(help: "Socket path (default: $JOBSTORED_SOCKET, else $XDG_RUNTIME_DIR/jobstored.sock, else /tmp/jobstored-$UID/jobstored.sock).")
    var socket: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("allow-uid"), help: "Another uid allowed to connect (repeatable); the daemon's own uid always is.")
    var allowUIDs: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: "A gid whose members may connect (repeatable).")
    var allowGIDs: [UInt32] = []

    @Flag(help: "Skip fsync in local stores (faster; an interrupted write still leaves old or new content, but a power loss may lose recent writes).")
    var noFsync = false

    @Option(help: "Seconds to let calls in flight finish on SIGINT/SIGTERM.")
    var shutdownDeadline: Double = 30

    @Option(help: "Default lifetime, in seconds, of URLs from GetPublicUrl.")
    var urlExpiry: Int = 3600

    func run() throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "jobstored")
        signal(SIGPIPE, SIG_IGN)
        // Handle termination signals on this thread only: block them before any thread starts.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let path = try socket ?? SocketPath.defaultPath(preparingDirectory: true)
        let stats = ServerStats()
        let registry = StoreRegistry(backend: StoreRegistry.localOnly(durable: !noFsync))
        let handler = JobStoreHandler(registry: registry, stats: stats, logger: logger, defaultURLExpiry: urlExpiry)
        let server = SocketServer(path: path, service: handler, stats: stats, logger: logger,
                                  allowedUIDs: Set(allowUIDs), allowedGIDs: Set(allowGIDs))
        do {
            try server.start()
        } catch {
            logger.critical("cannot serve \(path): \(error)")
            throw ExitCode(2)
        }
        var received: Int32 = 0
        sigwait(&signals, &received)
        logger.info("received signal \(received); draining calls in flight (deadline \(shutdownDeadline)s)")
        let left = server.shutdown(deadline: shutdownDeadline)
        if left > 0 { throw ExitCode(1) }
    }
}
