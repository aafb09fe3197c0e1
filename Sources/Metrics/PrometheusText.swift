import Foundation

/// Builds a page in Prometheus' text exposition format (version 0.0.4): one `# HELP` and
/// `# TYPE` per family, then its samples.
///
/// Why a writer of our own: the format is a few lines of text, and the daemon's figures
/// already live in its own counters; a metrics library would add a second registry to keep
/// in step with them.
public struct PrometheusText {
    public private(set) var text = ""
    private var declared = Set<String>()

    public init() {}

    /// The `# TYPE` of a family: scrapers treat counters, gauges and histograms differently.
    public enum Kind: String { case counter, gauge, histogram }

    /// Declares a family once; later calls with the same name add nothing.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        guard declared.insert(name).inserted else { return }
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name + Self.labelText(labels) + " " + Self.number(value) + "\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        text += name + Self.labelText(labels) + " " + String(value) + "\n"
    }

    /// A histogram's `_bucket` series (cumulative, with `le`), `_sum` and `_count`.
    public mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: LatencyHistogram) {
        let cumulative = h.cumulative
        for (i, bound) in LatencyHistogram.bounds.enumerated() {
            sample(name + "_bucket", labels + [("le", Self.number(bound))], cumulative[i])
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], cumulative.last ?? 0)
        sample(name + "_sum", labels, h.sum)
        sample(name + "_count", labels, cumulative.last ?? 0)
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func escapeLabel(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Go's shortest float form as Prometheus writes it (`1e-04`-style is also valid; we use
    /// plain decimals for readability, integers without a fraction).
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
