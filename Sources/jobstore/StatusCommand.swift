import ArgumentParser
import Foundation
import JobStoreClient
import JobStoreWire

extension JobStoreCommand {
    /// `jobstore status`: what the daemon is doing, from its Stats answer.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the daemon's version, uptime, connections, cache and S3 figures.")
        @OptionGroup var options: SocketOption
        @Flag(help: "One JSON object, for scripts.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let client = try options.connect()
                defer { client.connection.close() }
                let s = try await client.stats()
                if json {
                    print(try StatusJSON.render(s))
                } else {
                    print(StatusText.render(s), terminator: "")
                }
            }
        }
    }

    /// `jobstore ping`: one empty round trip.
    struct Ping: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that the daemon answers.")
        @OptionGroup var options: SocketOption
        @Option(help: "Seconds to wait for a daemon that is not answering yet (one starting up).")
        var wait: Double = 0

        func run() async throws {
            try await reportingFailures {
                let deadline = Date().addingTimeInterval(wait)
                var connected: JobStoreClient?
                while connected == nil {
                    do {
                        connected = try options.connect()
                    } catch let failure as CommandFailure where failure.status == CommandFailure.unreachable && Date() < deadline {
                        try await Task.sleep(nanoseconds: 100_000_000)
                    }
                }
                let client = connected!
                defer { client.connection.close() }
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try await client.ping()
                print("pong in \((DispatchTime.now().uptimeNanoseconds - start) / 1000) µs")
            }
        }
    }
}

/// `jobstore status` for people: one line per subject, rates as means since start.
enum StatusText {
    static func render(_ s: StatsResponse) -> String {
        var out = ""
        func line(_ text: String) { out += text + "\n" }
        line("jobstored \(s.serverVersion), up \(Duration.text(Double(s.uptimeSeconds)))")
        line("connections: \(s.connections) open, \(s.connectionsTotal) total; calls in flight: \(s.callsInFlight); stores open: \(s.storesOpen)")
        line("bytes in: \(s.bytesIn), bytes out: \(s.bytesOut)")
        for m in s.methods where m.calls > 0 {
            line("  \(m.method): \(m.calls) calls, \(m.errors) errors, \(m.totalMicros / max(m.calls, 1)) µs mean")
        }
        if let c = s.cache, c.enabled {
            line("cache \(c.directory): \(c.entries) entries, \(c.sizeBytes) of \(c.capacityBytes) bytes (\(c.reservedBytes) reserved), \(c.pinnedEntries) pinned")
            line("  hits \(c.hits), misses \(c.misses), revalidations \(c.revalidations), joined \(c.joined), written through \(c.writtenThrough), bypassed \(c.bypassed), evictions \(c.evictions), invalidations \(c.invalidations), corrupt \(c.corrupt)")
            line("  bytes from cache \(c.bytesFromCache), from the store \(c.bytesFromStore)")
        } else {
            line("cache: off")
        }
        if let t = s.s3Session {
            let trust = t.tlsVerificationDisabled ? "TLS certificates NOT verified (--no-verify-tls)"
                : t.caBundle.isEmpty ? "TLS verified against the system's CAs" : "TLS verified against \(t.caBundle)"
            line("S3 session: \(t.connectionsOpened) connections opened (\(t.tlsHandshakes) TLS handshakes, \(t.tlsSessionsResumed) resumed), \(t.requestsOnOpenConnections) requests on open connections; \(trust)")
            for o in t.outages { line(outageLine(o)) }
        }
        if !s.backendRequests.isEmpty {
            let uptime = Double(max(s.uptimeSeconds, 1))
            line("S3 requests:")
            for r in s.backendRequests {
                let rate = Double(r.requests) / uptime
                line("  \(r.operation): \(r.requests) sent (\(String(format: "%.2f", rate))/s), \(r.errors) errors, \(r.retries) retries, \(r.throttled) throttled, \(r.notModified) not modified, \(r.bytesSent) bytes out, \(r.bytesReceived) bytes in, \(r.totalMicros / max(r.requests, 1)) µs mean")
            }
        }
        return out
    }
}

extension StatusText {
    /// One endpoint's reachability: UNREACHABLE with since when and why, or its outages so far.
    static func outageLine(_ o: S3OutageStats) -> String {
        func s(_ ms: UInt64) -> String { String(format: "%.1f s", Double(ms) / 1000) }
        let history = "\(o.outages) outages (longest \(s(o.longestOutageMs))), \(o.callsWaited) calls waited (longest \(s(o.longestWaitMs))), "
            + "\(o.callsFailed) failed after the tolerance of \(s(o.toleranceMs))"
        guard o.unreachable else { return "  S3 \(o.endpoint): reachable; \(history)" }
        let since = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(o.unreachableSinceUnixMs) / 1000))
        return "  S3 \(o.endpoint): UNREACHABLE since \(since) (\(s(o.unreachableMs))): \(o.cause); \(o.callsWaiting) calls waiting; \(history)"
    }
}

/// Durations and sizes as people read them.
enum Duration {
    static func text(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        if s < 86400 { return "\(s / 3600)h\((s % 3600) / 60)m" }
        return "\(s / 86400)d\((s % 86400) / 3600)h"
    }
}
