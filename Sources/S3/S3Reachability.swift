import Foundation

/// Whether the session's S3 endpoint can be reached: an outage is a state of the session, not an
/// error of each call.
///
/// Why: S3 services restart (rolling upgrades of MinIO, Ceph RGW or SeaweedFS, a load balancer's
/// failover, a network blip). Failing every call then kills a workflow that ran for hours, and
/// a hundred workers each retrying on their own hammer a server on its way back. Once an attempt
/// finds the endpoint unreachable, calls wait here instead. One of them at a time sends its own
/// request as the probe, with backoff and jitter between probes. An answer of any kind ends the
/// outage and releases everyone. After `tolerance` seconds of outage, a waiting call fails with
/// `S3Unreachable`, which names how long and why. From then on, calls that are not the probe
/// fail at once, until a probe gets through.
///
/// Evidence is counted only from attempts that began in the current state (`generation`). A
/// request sent before the outage that succeeds late does not end it. A request sent before the
/// recovery that fails late does not start a new one.
public final class S3Reachability: @unchecked Sendable {
    /// What `admit` lets a caller do.
    public struct Ticket: Sendable {
        /// This caller's request is the outage's one probe.
        public let probe: Bool
        let generation: UInt64
        /// When the call first met the outage (nil: it did not wait).
        public let waitingSince: Double?
    }

    /// An attempt's outcome, as evidence about the endpoint.
    public enum Outcome: Sendable {
        /// The endpoint answered: an HTTP status that is not a gateway's, or a TLS refusal.
        case answered
        /// No answer from the endpoint: refused, reset, a timeout, or a gateway's 502/503/504.
        case unreachable(String)
        /// Neither: the request was not sent (credentials failed before it).
        case none
    }

    /// The figures that Stats and metrics show.
    public struct Snapshot: Sendable {
        public var endpoint: String
        /// Wall-clock time the current outage began (nil: reachable).
        public var unreachableSince: Date?
        public var unreachableSeconds: Double = 0
        public var cause = ""
        public var outages: UInt64 = 0
        /// Calls that met an outage and waited, in all; calls waiting now; the longest wait.
        public var callsWaited: UInt64 = 0
        public var callsWaiting: UInt64 = 0
        public var longestWaitSeconds: Double = 0
        /// Calls failed because an outage outlasted the tolerance.
        public var callsFailed: UInt64 = 0
        /// How long the longest outage that has ended lasted.
        public var longestOutageSeconds: Double = 0
        public var tolerance: Double = 0
    }

    /// What is logged: one line when an outage begins, one when calls begin to fail, one when it ends.
    public enum Event: Sendable, CustomStringConvertible {
        case began(endpoint: String, cause: String, tolerance: Double)
        case budgetSpent(endpoint: String, seconds: Double, cause: String)
        case ended(endpoint: String, seconds: Double, callsWaited: UInt64, longestWait: Double)

        public var description: String {
            switch self {
            case let .began(endpoint, cause, tolerance):
                "S3 at \(endpoint) is unreachable (\(cause)); calls wait for it up to \(Self.seconds(tolerance)) (--s3-outage-tolerance)"
            case let .budgetSpent(endpoint, seconds, cause):
                "S3 at \(endpoint) has been unreachable for \(Self.seconds(seconds)) (\(cause)); waiting calls now fail with UNAVAILABLE"
            case let .ended(endpoint, seconds, waited, longest):
                "S3 at \(endpoint) is reachable again after \(Self.seconds(seconds)); \(waited) calls waited, the longest \(Self.seconds(longest))"
            }
        }

        static func seconds(_ s: Double) -> String { String(format: "%.1f s", s) }
    }

    public let endpoint: String
    /// Seconds of outage calls wait through (0: none; every failure is the call's own, as before).
    public let tolerance: Double
    /// Probes after the first are spaced min(cap, base × 2ⁿ) × a random factor in [0.5, 1]. A cap of
    /// 1 s: one request a second from a node costs a recovering server nothing, and the outage
    /// is seen to end within a second (a 5 s cap measured 4 s late on an 8 s outage).
    public let probeBackoffBase: Double
    public let probeBackoffCap: Double
    private let onEvent: @Sendable (Event) -> Void
    private let condition = NSCondition()
    private var generation: UInt64 = 0
    private var since: Double?
    private var sinceWall: Date?
    private var cause = ""
    private var probing = false
    private var nextProbe = 0.0
    private var failedProbes = 0
    private var everAnswered = false
    private var budgetSpentLogged = false
    private var figures: Snapshot
    private var outageWaited: UInt64 = 0
    private var outageLongestWait = 0.0

    public init(endpoint: String, tolerance: Double, probeBackoffBase: Double = 0.1, probeBackoffCap: Double = 1,
                onEvent: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.endpoint = endpoint
        self.tolerance = max(0, tolerance)
        self.probeBackoffBase = probeBackoffBase
        self.probeBackoffCap = probeBackoffCap
        self.onEvent = onEvent
        figures = Snapshot(endpoint: endpoint, tolerance: max(0, tolerance))
    }

    public var enabled: Bool { tolerance > 0 }

    /// Seconds on a monotonic clock.
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Whether the endpoint has answered this session at least once: a TLS handshake failing
    /// after that is an outage, before it a configuration problem.
    public var hasAnswered: Bool {
        condition.lock()
        defer { condition.unlock() }
        return everAnswered
    }

    public var isUnreachable: Bool {
        condition.lock()
        defer { condition.unlock() }
        return since != nil
    }

    /// Blocks while the endpoint is unreachable, until this caller may send: the outage ended,
    /// or it is this caller's turn to probe. Throws `S3Unreachable` once the outage has lasted
    /// `tolerance` seconds. `metSince` carries a call's first meeting with the outage over its
    /// attempts, so that its wait is counted once, from the start.
    public func admit(metSince: Double? = nil) throws -> Ticket {
        condition.lock()
        defer { condition.unlock() }
        guard enabled, since != nil else { return Ticket(probe: false, generation: generation, waitingSince: metSince) }
        let met = metSince ?? Self.now()
        figures.callsWaiting += 1
        defer { figures.callsWaiting -= 1 }
        while let start = since {
            let t = Self.now()
            if !probing && t >= nextProbe {
                probing = true
                return Ticket(probe: true, generation: generation, waitingSince: met)
            }
            let age = t - start
            if age >= tolerance {
                figures.callsFailed += 1
                record(wait: t - met)
                if !budgetSpentLogged {
                    budgetSpentLogged = true
                    onEvent(.budgetSpent(endpoint: endpoint, seconds: age, cause: cause))
                }
                throw S3Unreachable(endpoint: endpoint, seconds: age, since: sinceWall ?? Date(), cause: cause, tolerance: tolerance)
            }
            let until = probing ? start + tolerance : min(nextProbe, start + tolerance)
            _ = condition.wait(until: Date(timeIntervalSinceNow: max(0.001, until - t)))
        }
        return Ticket(probe: false, generation: generation, waitingSince: met)
    }

    /// Records what an admitted attempt found.
    public func settle(_ ticket: Ticket, _ outcome: Outcome) {
        condition.lock()
        defer { condition.unlock() }
        if ticket.probe { probing = false }
        let current = ticket.generation == generation
        let t = Self.now()
        switch outcome {
        case .answered:
            everAnswered = true
            if current, let start = since {
                let lasted = t - start
                figures.longestOutageSeconds = max(figures.longestOutageSeconds, lasted)
                onEvent(.ended(endpoint: endpoint, seconds: lasted, callsWaited: outageWaited, longestWait: outageLongestWait))
                since = nil
                sinceWall = nil
                generation += 1
            }
        case .unreachable(let why):
            guard enabled else { break }
            if since == nil {
                guard current else { break }
                since = t
                sinceWall = Date()
                cause = why
                failedProbes = 0
                nextProbe = t + backoff()
                budgetSpentLogged = false
                outageWaited = 0
                outageLongestWait = 0
                figures.outages += 1
                generation += 1
                onEvent(.began(endpoint: endpoint, cause: why, tolerance: tolerance))
            } else if ticket.probe {
                cause = why
                failedProbes += 1
                nextProbe = t + backoff()
            }
        case .none:
            break
        }
        condition.broadcast()
    }

    /// A call that met an outage is done (sent, or failed for another reason): its wait counts.
    public func finished(_ ticket: Ticket) {
        guard let met = ticket.waitingSince else { return }
        condition.lock()
        defer { condition.unlock() }
        record(wait: Self.now() - met)
    }

    private func record(wait: Double) {
        figures.callsWaited += 1
        figures.longestWaitSeconds = max(figures.longestWaitSeconds, wait)
        outageWaited += 1
        outageLongestWait = max(outageLongestWait, wait)
    }

    private func backoff() -> Double {
        min(probeBackoffCap, probeBackoffBase * Double(1 << min(failedProbes, 20))) * Double.random(in: 0.5...1)
    }

    public var snapshot: Snapshot {
        condition.lock()
        defer { condition.unlock() }
        var s = figures
        s.unreachableSince = sinceWall
        s.unreachableSeconds = since.map { Self.now() - $0 } ?? 0
        s.cause = since == nil ? "" : cause
        return s
    }
}
