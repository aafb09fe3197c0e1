/// Counts of durations in fixed buckets, the shape Prometheus histograms take.
///
/// Why fixed buckets: every rpc and S3 operation keeps one, updated on each call under a lock
/// the caller already holds, so recording must be a few compares and an add; the bounds span
/// a 100-µs socket round trip to a minute-long multipart upload.
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds, in seconds, of every bucket but the last (+Inf).
    public static let bounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    /// Per-bucket counts (not cumulative); the last one is above every bound.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public var count: UInt64 { counts.reduce(0, +) }

    public init() {
        counts = [UInt64](repeating: 0, count: Self.bounds.count + 1)
    }

    public mutating func record(seconds: Double) {
        var i = 0
        while i < Self.bounds.count && seconds > Self.bounds[i] { i += 1 }
        counts[i] += 1
        sum += seconds
    }

    public mutating func record(micros: UInt64) {
        record(seconds: Double(micros) / 1_000_000)
    }

    /// Cumulative counts per bound, then +Inf, as the exposition format wants them.
    public var cumulative: [UInt64] {
        var total: UInt64 = 0
        return counts.map { total += $0; return total }
    }
}
