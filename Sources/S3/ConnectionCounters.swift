import Synchronization

/// The S3 session's connections: how many it opened (each over https a TLS handshake) and how
/// many requests went on one already open. One pool serves every worker of the node, so a
/// worker that starts later costs no connection and no handshake (Toil's boto3 pays at least
/// one per process).
public final class ConnectionCounters: Sendable {
    /// One reading of the counters, for Stats and the metrics page.
    public struct Figures: Sendable, Equatable {
        public var opened: UInt64 = 0
        public var requestsOnOpenConnections: UInt64 = 0
        public var tlsHandshakes: UInt64 = 0
        /// Handshakes that resumed a TLS session another connection of the pool made (abbreviated).
        public var tlsSessionsResumed: UInt64 = 0
    }

    private let figures = Mutex(Figures())

    public init() {}

    /// One request finished; `opened` is libcurl's CURLINFO_NUM_CONNECTS for it.
    func record(opened: Int, secure: Bool, resumed: Bool) {
        figures.withLock {
            if opened > 0 {
                $0.opened += UInt64(opened)
                if secure { $0.tlsHandshakes += UInt64(opened) }
                if resumed { $0.tlsSessionsResumed += 1 }
            } else {
                $0.requestsOnOpenConnections += 1
            }
        }
    }

    public var snapshot: Figures { figures.withLock { $0 } }
}
