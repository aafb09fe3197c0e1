import JobStoreWire
import S3

/// Stats' view of the daemon's S3 session: connections, handshakes, how certificates are
/// checked, and each endpoint's outages. Here, not in S3, because the S3 target knows nothing
/// of the wire's messages.
extension S3SessionStats {
    init(_ stores: S3Stores) {
        let session = stores.session
        let c = session.connections.snapshot
        self.init(connectionsOpened: c.opened, requestsOnOpenConnections: c.requestsOnOpenConnections,
                  tlsHandshakes: c.tlsHandshakes, tlsVerificationDisabled: !session.tls.verify,
                  caBundle: session.tls.caBundle ?? "", tlsSessionsResumed: c.tlsSessionsResumed,
                  outages: stores.reachability.map(S3OutageStats.init))
    }
}

extension S3OutageStats {
    init(_ r: S3Reachability.Snapshot) {
        func ms(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds * 1000).rounded()) }
        self.init(endpoint: r.endpoint, unreachable: r.unreachableSince != nil,
                  unreachableSinceUnixMs: r.unreachableSince.map { ms($0.timeIntervalSince1970) } ?? 0,
                  unreachableMs: ms(r.unreachableSeconds), cause: r.cause, outages: r.outages,
                  longestOutageMs: ms(r.longestOutageSeconds), callsWaited: r.callsWaited, callsWaiting: r.callsWaiting,
                  longestWaitMs: ms(r.longestWaitSeconds), callsFailed: r.callsFailed, toleranceMs: ms(r.tolerance))
    }
}

extension BackendRequestStats {
    /// Stats' S3 requests by operation, in operation order.
    static func of(_ counters: S3RequestCounters) -> [BackendRequestStats] {
        counters.snapshot.sorted { $0.key < $1.key }.map { operation, f in
            BackendRequestStats(operation: operation, requests: f.requests, errors: f.errors, retries: f.retries,
                                throttled: f.throttled, notModified: f.notModified, bytesSent: f.bytesSent,
                                bytesReceived: f.bytesReceived, totalMicros: f.totalMicros)
        }
    }
}
