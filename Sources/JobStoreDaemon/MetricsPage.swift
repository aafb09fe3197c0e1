import Foundation
import JobStoreServer
import JobStoreWire
import Metrics
import S3

/// The Prometheus page of `--metrics`: the daemon's Stats figures, per-rpc and per-S3-operation
/// latency histograms, and the node cache, named by Prometheus conventions (`jobstored_`
/// prefix, `_total` counters, base units: seconds and bytes).
struct MetricsPage: Sendable {
    let stats: ServerStats
    let handler: JobStoreHandler
    let counters: S3RequestCounters

    /// S3 reachability, by endpoint: the state as gauges, what outages cost as counters.
    func outages(_ page: inout PrometheusText, _ outages: [S3OutageStats]) {
        let families: [(String, PrometheusText.Kind, String, (S3OutageStats) -> Double)] = [
            ("jobstored_s3_unreachable", .gauge, "1 while the S3 endpoint cannot be reached (calls wait for it).", { $0.unreachable ? 1 : 0 }),
            ("jobstored_s3_unreachable_seconds", .gauge, "How long the current S3 outage has lasted (0: reachable).",
             { Double($0.unreachableMs) / 1000 }),
            ("jobstored_s3_outage_calls_waiting", .gauge, "Calls waiting for S3 to be reachable again.", { Double($0.callsWaiting) }),
            ("jobstored_s3_outages_total", .counter, "S3 outages begun (the endpoint could not be reached).", { Double($0.outages) }),
            ("jobstored_s3_outage_waits_total", .counter, "Calls that met an S3 outage and waited.", { Double($0.callsWaited) }),
            ("jobstored_s3_outage_failed_calls_total", .counter, "Calls failed because an S3 outage outlasted --s3-outage-tolerance.",
             { Double($0.callsFailed) }),
            ("jobstored_s3_outage_longest_wait_seconds", .gauge, "The longest a call waited through an S3 outage.",
             { Double($0.longestWaitMs) / 1000 }),
            ("jobstored_s3_outage_longest_seconds", .gauge, "The longest S3 outage that ended.", { Double($0.longestOutageMs) / 1000 }),
        ]
        for (name, kind, help, value) in families {
            page.family(name, kind, help: help)
            for o in outages { page.sample(name, [("endpoint", o.endpoint)], value(o)) }
        }
    }

    func render() -> String {
        let s = handler.statsSnapshot()
        var page = PrometheusText()
        page.family("jobstored_build_info", .gauge, help: "The daemon's version (always 1).")
        page.sample("jobstored_build_info", [("version", s.serverVersion)], UInt64(1))
        gauge(&page, "jobstored_uptime_seconds", "Seconds since the daemon started.", s.uptimeSeconds)
        gauge(&page, "jobstored_connections", "Client connections open now.", UInt64(s.connections))
        counter(&page, "jobstored_connections_total", "Client connections accepted.", s.connectionsTotal)
        gauge(&page, "jobstored_calls_in_flight", "Calls being served now.", UInt64(s.callsInFlight))
        gauge(&page, "jobstored_stores_open", "Job stores opened since start.", UInt64(s.storesOpen))
        counter(&page, "jobstored_socket_received_bytes_total", "Bytes read from client sockets.", s.bytesIn)
        counter(&page, "jobstored_socket_sent_bytes_total", "Bytes written to client sockets.", s.bytesOut)

        page.family("jobstored_rpc_calls_total", .counter, help: "Calls answered, by rpc.")
        for m in s.methods { page.sample("jobstored_rpc_calls_total", [("method", m.method)], m.calls) }
        page.family("jobstored_rpc_errors_total", .counter, help: "Calls answered with a status other than OK, by rpc.")
        for m in s.methods { page.sample("jobstored_rpc_errors_total", [("method", m.method)], m.errors) }
        page.family("jobstored_rpc_duration_seconds", .histogram, help: "Time from a call's request to its answer, by rpc.")
        for (method, histogram) in stats.latencyByMethod where histogram.count > 0 {
            page.histogram("jobstored_rpc_duration_seconds", [("method", method)], histogram)
        }

        let s3 = counters.snapshot.sorted { $0.key < $1.key }
        let s3Counters: [(String, String, KeyPath<S3RequestCounters.Figures, UInt64>)] = [
            ("jobstored_s3_requests_total", "S3 requests sent (each attempt), by operation.", \.requests),
            ("jobstored_s3_errors_total", "S3 requests that failed after their last attempt, by operation.", \.errors),
            ("jobstored_s3_retries_total", "S3 attempts that failed retryably and were tried again, by operation.", \.retries),
            ("jobstored_s3_throttled_total", "S3 answers asking to slow down (503 SlowDown, 429), by operation.", \.throttled),
            ("jobstored_s3_not_modified_total", "S3 304 answers to conditional GETs (a cached file was current).", \.notModified),
            ("jobstored_s3_sent_bytes_total", "Bytes sent to S3, by operation.", \.bytesSent),
            ("jobstored_s3_received_bytes_total", "Bytes received from S3, by operation.", \.bytesReceived),
        ]
        for (name, help, field) in s3Counters {
            page.family(name, .counter, help: help)
            for (operation, figures) in s3 { page.sample(name, [("operation", operation)], figures[keyPath: field]) }
        }
        page.family("jobstored_s3_request_duration_seconds", .histogram, help: "Time of each S3 attempt, by operation.")
        for (operation, figures) in s3 where figures.latency.count > 0 {
            page.histogram("jobstored_s3_request_duration_seconds", [("operation", operation)], figures.latency)
        }
        if let t = s.s3Session {
            counter(&page, "jobstored_s3_connections_opened_total", "Connections the S3 session opened.", t.connectionsOpened)
            counter(&page, "jobstored_s3_tls_handshakes_total", "TLS handshakes of the S3 session (one per https connection opened).",
                    t.tlsHandshakes)
            counter(&page, "jobstored_s3_tls_sessions_resumed_total", "TLS handshakes that resumed a session of the pool.",
                    t.tlsSessionsResumed)
            counter(&page, "jobstored_s3_requests_on_open_connections_total", "S3 requests sent on a connection already open.",
                    t.requestsOnOpenConnections)
            gauge(&page, "jobstored_s3_tls_verification_disabled", "1 when --no-verify-tls is set.", t.tlsVerificationDisabled ? 1 : 0)
            outages(&page, t.outages)
        }

        if let c = s.cache, c.enabled {
            counter(&page, "jobstored_cache_hits_total", "Reads served from a current cache entry.", c.hits)
            counter(&page, "jobstored_cache_misses_total", "Reads that had to download.", c.misses)
            counter(&page, "jobstored_cache_revalidations_total", "Conditional requests that found an entry current.", c.revalidations)
            counter(&page, "jobstored_cache_joined_total", "Reads that waited for another reader's download.", c.joined)
            counter(&page, "jobstored_cache_served_bytes_total", "Bytes served from the cache.", c.bytesFromCache)
            counter(&page, "jobstored_cache_downloaded_bytes_total", "Bytes downloaded into the cache.", c.bytesFromStore)
            counter(&page, "jobstored_cache_written_through_total", "Uploads kept as cache entries.", c.writtenThrough)
            counter(&page, "jobstored_cache_bypassed_total", "Reads too large for the cache, served directly.", c.bypassed)
            counter(&page, "jobstored_cache_evictions_total", "Entries evicted to stay under the cap.", c.evictions)
            counter(&page, "jobstored_cache_invalidations_total", "Entries dropped because the object changed.", c.invalidations)
            counter(&page, "jobstored_cache_corrupt_total", "Entries that failed their checksum and were dropped.", c.corrupt)
            gauge(&page, "jobstored_cache_size_bytes", "Bytes of cache entries.", c.sizeBytes)
            gauge(&page, "jobstored_cache_reserved_bytes", "Bytes reserved by downloads in progress.", c.reservedBytes)
            gauge(&page, "jobstored_cache_capacity_bytes", "The cache's cap (--cache-size).", c.capacityBytes)
            gauge(&page, "jobstored_cache_entries", "Cache entries.", c.entries)
            gauge(&page, "jobstored_cache_pinned_entries", "Entries being read or leased now.", c.pinnedEntries)
        }
        return page.text
    }

    private func counter(_ page: inout PrometheusText, _ name: String, _ help: String, _ value: UInt64) {
        page.family(name, .counter, help: help)
        page.sample(name, [], value)
    }

    private func gauge(_ page: inout PrometheusText, _ name: String, _ help: String, _ value: UInt64) {
        page.family(name, .gauge, help: help)
        page.sample(name, [], value)
    }
}
