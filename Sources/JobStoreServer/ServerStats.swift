import Foundation
import JobStoreWire
import Metrics
import Synchronization

/// Daemon-wide counters behind the Stats rpc.
public final class ServerStats: Sendable {
    struct Counters {
        var connections = 0
        var connectionsTotal: UInt64 = 0
        var callsInFlight = 0
        var bytesIn: UInt64 = 0
        var bytesOut: UInt64 = 0
        var calls = [UInt64](repeating: 0, count: JobStoreMethod.allCases.count)
        var errors = [UInt64](repeating: 0, count: JobStoreMethod.allCases.count)
        var micros = [UInt64](repeating: 0, count: JobStoreMethod.allCases.count)
        var latency = [LatencyHistogram](repeating: LatencyHistogram(), count: JobStoreMethod.allCases.count)
    }

    private let counters = Mutex(Counters())
    let started = Date()

    public init() {}

    func connectionOpened() { counters.withLock { $0.connections += 1; $0.connectionsTotal += 1 } }
    func connectionClosed() { counters.withLock { $0.connections -= 1 } }
    func callStarted() { counters.withLock { $0.callsInFlight += 1 } }
    func addBytesIn(_ n: Int) { counters.withLock { $0.bytesIn += UInt64(n) } }
    func addBytesOut(_ n: Int) { counters.withLock { $0.bytesOut += UInt64(n) } }

    func callFinished(_ method: JobStoreMethod, failed: Bool, micros: UInt64) {
        counters.withLock {
            let i = Int(method.rawValue)
            $0.callsInFlight -= 1
            $0.calls[i] += 1
            if failed { $0.errors[i] += 1 }
            $0.micros[i] += micros
            $0.latency[i].record(micros: micros)
        }
    }

    public var callsInFlight: Int { counters.withLock { $0.callsInFlight } }

    /// Each rpc's call durations, by method name, for the metrics endpoint.
    public var latencyByMethod: [(method: String, histogram: LatencyHistogram)] {
        counters.withLock { c in JobStoreMethod.allCases.map { ($0.name, c.latency[Int($0.rawValue)]) } }
    }

    func snapshot(storesOpen: Int, version: String) -> StatsResponse {
        counters.withLock { c in
            StatsResponse(
                serverVersion: version,
                uptimeSeconds: UInt64(max(0, Date().timeIntervalSince(started))),
                connections: UInt32(c.connections),
                connectionsTotal: c.connectionsTotal,
                callsInFlight: UInt32(c.callsInFlight),
                storesOpen: UInt32(storesOpen),
                bytesIn: c.bytesIn,
                bytesOut: c.bytesOut,
                methods: JobStoreMethod.allCases.map { m in
                    let i = Int(m.rawValue)
                    return MethodStats(method: m.name, calls: c.calls[i], errors: c.errors[i], totalMicros: c.micros[i])
                })
        }
    }
}
