import Foundation
import Synchronization

/// The session-wide request pace after S3 says SlowDown (or 503/429): one answer slows every
/// worker on the node, not just the call that got it, so a hundred workers back off together
/// instead of retrying into the same throttle.
///
/// Multiplicative decrease, recovery paced by successes (as TCP's congestion window): each
/// throttle doubles the gap enforced between request starts (from `minimumGap` up to
/// `maximumGap`); once `quietPeriod` seconds passed without one, every success narrows it by
/// `recovery` until it is gone. Recovering per success rather than per period matters: measured
/// with 1.5% of requests throttled at random, a halving per 5-s period ratcheted the gap to its
/// maximum and the node to one request a second. Time is injected for tests.
public final class AdaptiveRate: Sendable {
    public let minimumGap: Double
    public let maximumGap: Double
    public let quietPeriod: Double
    public let recovery: Double
    private let now: @Sendable () -> Double
    /// What `state` guards: the pace now enforced, and when it last changed.
    private struct State {
        var gap: Double = 0
        var nextStart: Double = 0
        var lastThrottle: Double = -Double.infinity
    }
    private let state = Mutex(State())

    public init(minimumGap: Double = 0.005, maximumGap: Double = 1, quietPeriod: Double = 1, recovery: Double = 0.9,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.recovery = recovery
        self.minimumGap = minimumGap
        self.maximumGap = maximumGap
        self.quietPeriod = quietPeriod
        self.now = now
    }

    /// Seconds currently enforced between request starts (0: unthrottled).
    public var currentGap: Double {
        state.withLock { $0.gap }
    }

    /// How long the caller must wait before starting its request; reserves its slot.
    public func reserve() -> Double {
        state.withLock { s in
            guard s.gap > 0 else { return 0 }
            let t = now()
            let start = max(t, s.nextStart)
            s.nextStart = start + s.gap
            return start - t
        }
    }

    /// Blocks until the caller may start its request.
    public func admit() {
        let wait = reserve()
        if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
    }

    /// The server throttled a request.
    public func throttled() {
        state.withLock { s in
            s.gap = min(maximumGap, max(minimumGap, s.gap * 2))
            s.lastThrottle = now()
        }
    }

    /// A request succeeded.
    public func succeeded() {
        state.withLock { s in
            guard s.gap > 0, now() - s.lastThrottle >= quietPeriod else { return }
            s.gap *= recovery
            if s.gap < minimumGap { s.gap = 0 }
        }
    }
}
