import Foundation
import JobStoreClient
import JobStoreCore
import JobStoreServer
import JobStoreWire
import Logging

/// A JobStoreServer in the test's own process, reached over socketpairs that
/// `SocketServer.admit` serves: dispatch, limits and errors are tested without a child process
/// or a socket file. Process-level tests (DaemonProcess) stay where a process boundary is the
/// point: kills, takeover, peer uids, the command line.
final class InProcessServer: Sendable {
    let server: SocketServer
    let stats = ServerStats()
    let storeRoot: String
    /// This process: what a memory figure of "the daemon" is read from.
    let pid = getpid()

    /// - Parameters:
    ///   - frameTimeout: seconds a client may stall mid-frame (`--frame-timeout`).
    ///   - allowedUIDs: as `--allow-uid`; the process's own uid is always allowed.
    init(frameTimeout: Double = 30, allowedUIDs: Set<UInt32> = []) throws {
        storeRoot = NSTemporaryDirectory() + "jobstored-in-process-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: storeRoot, withIntermediateDirectories: true)
        var logger = Logger(label: "in-process-server")
        logger.logLevel = .critical
        let registry = StoreRegistry(backend: StoreRegistry.localOnly(durable: false))
        let handler = JobStoreHandler(registry: registry, stats: stats, logger: logger)
        server = SocketServer(path: storeRoot + "/never-bound.sock", service: handler, stats: stats, logger: logger,
                              allowedUIDs: allowedUIDs, midFrameTimeout: frameTimeout)
    }

    /// The test's end of a new connection: one end of a socketpair, the other admitted by the
    /// server as an accepted socket would be.
    func connect() throws -> Int32 {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else {
            throw SocketError("socketpair", errno: errno)
        }
        server.admit(ends[0])
        return ends[1]
    }

    /// The generated Swift client over a new connection.
    func client() throws -> JobStoreClient {
        JobStoreClient(connection: ClientConnection(connectedSocket: try connect(), name: "an in-process server"))
    }

    func locator(_ name: String = UUID().uuidString.prefix(8).lowercased()) -> String {
        "local:\(storeRoot)/\(name)"
    }

    /// Drains the server (every connection closed) and removes the stores.
    func stop() {
        server.shutdown(deadline: 5)
        try? FileManager.default.removeItem(atPath: storeRoot)
    }
}
