import Foundation
import JobStoreWire

/// `jobstore status --json`: the Stats answer as one JSON object with snake_case names (the
/// proto's), so scripts read the same names the wire contract documents.
enum StatusJSON {
    static func render(_ s: StatsResponse) throws -> String {
        var object: [String: Any] = [
            "server_version": s.serverVersion,
            "uptime_seconds": s.uptimeSeconds,
            "connections": s.connections,
            "connections_total": s.connectionsTotal,
            "calls_in_flight": s.callsInFlight,
            "stores_open": s.storesOpen,
            "bytes_in": s.bytesIn,
            "bytes_out": s.bytesOut,
            "methods": s.methods.filter { $0.calls > 0 }.map {
                ["method": $0.method, "calls": $0.calls, "errors": $0.errors, "total_micros": $0.totalMicros] as [String: Any]
            },
            "backend_requests": s.backendRequests.map {
                ["operation": $0.operation, "requests": $0.requests, "errors": $0.errors, "retries": $0.retries,
                 "throttled": $0.throttled, "not_modified": $0.notModified, "bytes_sent": $0.bytesSent,
                 "bytes_received": $0.bytesReceived, "total_micros": $0.totalMicros] as [String: Any]
            },
        ]
        if let c = s.cache {
            object["cache"] = [
                "enabled": c.enabled, "directory": c.directory, "capacity_bytes": c.capacityBytes, "size_bytes": c.sizeBytes,
                "reserved_bytes": c.reservedBytes, "entries": c.entries, "pinned_entries": c.pinnedEntries, "hits": c.hits,
                "misses": c.misses, "revalidations": c.revalidations, "joined": c.joined, "bytes_from_cache": c.bytesFromCache,
                "bytes_from_store": c.bytesFromStore, "written_through": c.writtenThrough, "bypassed": c.bypassed,
                "evictions": c.evictions, "invalidations": c.invalidations, "corrupt": c.corrupt,
            ] as [String: Any]
        }
        if let t = s.s3Session {
            object["s3_session"] = [
                "connections_opened": t.connectionsOpened, "requests_on_open_connections": t.requestsOnOpenConnections,
                "tls_handshakes": t.tlsHandshakes, "tls_verification_disabled": t.tlsVerificationDisabled,
                "ca_bundle": t.caBundle, "tls_sessions_resumed": t.tlsSessionsResumed,
                "outages": t.outages.map {
                    ["endpoint": $0.endpoint, "unreachable": $0.unreachable, "unreachable_since_unix_ms": $0.unreachableSinceUnixMs,
                     "unreachable_ms": $0.unreachableMs, "cause": $0.cause, "outages": $0.outages,
                     "longest_outage_ms": $0.longestOutageMs, "calls_waited": $0.callsWaited, "calls_waiting": $0.callsWaiting,
                     "longest_wait_ms": $0.longestWaitMs, "calls_failed": $0.callsFailed, "tolerance_ms": $0.toleranceMs] as [String: Any]
                },
            ] as [String: Any]
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
