import Foundation
import Logging
import Metrics
import Synchronization

/// The daemon's `--metrics` listener, which may start late: after `--takeover` the old daemon
/// holds the port until it begins draining, so the new one retries the bind in the background
/// for a while instead of failing (and leaving the node without a daemon).
final class MetricsEndpoint: Sendable {
    /// What `state` guards: the server once bound, and whether `stop()` came.
    private struct State {
        var server: MetricsHTTPServer?
        var stopped = false
    }
    private let state = Mutex(State())

    /// Binds now; when the port is in use and `retryFor` > 0, keeps trying on a thread of its
    /// own for that many seconds. Any other failure (a bad address) throws at once.
    func start(host: String, port: UInt16, retryFor: Double, logger: Logger, render: @escaping @Sendable () -> String) throws {
        do {
            install(try MetricsHTTPServer(host: host, port: port, render: render), logger: logger)
        } catch let error as MetricsError where error.addressInUse && retryFor > 0 {
            logger.notice("metrics port \(host):\(port) still held by the daemon being replaced; retrying for \(Int(retryFor))s")
            let thread = Thread { [self] in
                let deadline = Date().addingTimeInterval(retryFor)
                while Date() < deadline && !isStopped {
                    usleep(200_000)
                    if let server = try? MetricsHTTPServer(host: host, port: port, render: render) {
                        install(server, logger: logger)
                        return
                    }
                }
                logger.error("metrics port \(host):\(port) never came free: no metrics endpoint")
            }
            thread.start()
        }
    }

    private func install(_ server: MetricsHTTPServer, logger: Logger) {
        let installed = state.withLock { s in
            guard !s.stopped else { return false }
            s.server = server
            return true
        }
        guard installed else {
            server.stop()
            server.start()  // its accept thread closes the socket at once
            return
        }
        server.start()
        logger.notice("metrics at http://\(server.host):\(server.port)/metrics")
    }

    private var isStopped: Bool {
        state.withLock { $0.stopped }
    }

    func stop() {
        let running = state.withLock { s in
            s.stopped = true
            let running = s.server
            s.server = nil
            return running
        }
        running?.stop()
    }
}
