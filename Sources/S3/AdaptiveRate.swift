import Foundation

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
public final class AdaptiveRate: @unchecked Sendable {
    public let minimumGap: Double
    public let maximumGap: Double
    public let quietPeriod: Double
    public let recovery: Double
    private let lock = NSLock()
    private let now: @Sendable () -> Double
    private var gap: Double = 0
    private var nextStart: Double = 0
    private var lastThrottle: Double = -Double.infinity

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
        lock.lock()
        defer { lock.unlock() }
        return gap
    }

    /// How long the caller must wait before starting its request; reserves its slot.
    public func reserve() -> Double {
        lock.lock()
        defer { lock.unlock() }
        guard gap > 0 else { return 0 }
        let t = now()
        let start = max(t, nextStart)
        nextStart = start + gap
        return start - t
    }

    /// Blocks until the caller may start its request.
    public func admit() {
        let wait = reserve()
        if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
    }

    /// The server throttled a request.
    public func throttled() {
        lock.lock()
        defer { lock.unlock() }
        gap = min(maximumGap, max(minimumGap, gap * 2))
        lastThrottle = now()
    }

    /// A request succeeded.
    public func succeeded() {
        lock.lock()
        defer { lock.unlock() }
        guard gap > 0, now() - lastThrottle >= quietPeriod else { return }
        gap *= recovery
        if gap < minimumGap { gap = 0 }
    }
}
