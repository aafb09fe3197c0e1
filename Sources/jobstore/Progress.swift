import Foundation

/// The progress of one copy on stderr: a bar redrawn in place on a terminal (bytes, rate, ETA),
/// plain lines at most every `interval` seconds otherwise (a log or a CI job keeps them), and
/// a last line with the total either way. Nothing with `quiet`.
final class Progress {
    let total: UInt64?
    let interval: Double
    let quiet: Bool
    let terminal: Bool
    private(set) var done: UInt64 = 0
    private let started = DispatchTime.now().uptimeNanoseconds
    private var lastShown: UInt64 = 0
    private var drewBar = false

    init(total: UInt64?, interval: Double, quiet: Bool, terminal: Bool = isatty(2) == 1) {
        self.total = total
        self.interval = interval
        self.quiet = quiet
        self.terminal = terminal
    }

    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }

    func add(_ bytes: Int) {
        done += UInt64(bytes)
        guard !quiet else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let every = terminal ? min(interval, 0.1) : interval
        guard Double(now - lastShown) / 1e9 >= every else { return }
        lastShown = now
        show()
    }

    /// The last line: bytes, time and mean rate.
    func finish(verb: String) {
        guard !quiet else { return }
        if drewBar { write("\r\u{1B}[K") }
        let rate = Double(done) / max(elapsed, 1e-6)
        write("jobstore: \(verb) \(done) bytes in \(String(format: "%.2f", elapsed)) s (\(Self.mebibytes(rate)) MiB/s)\n")
    }

    private func show() {
        let seconds = max(elapsed, 1e-6)
        let rate = Double(done) / seconds
        var eta = ""
        var percent = ""
        if let total, total > 0 {
            percent = String(format: " (%.0f%%)", Double(done) * 100 / Double(total))
            let left = total > done ? Double(total - done) : 0
            eta = rate > 0 ? ", ETA \(Int((left / rate).rounded(.up))) s" : ""
        }
        if terminal {
            var bar = ""
            if let total, total > 0 {
                let filled = Int(Double(min(done, total)) / Double(total) * 30)
                bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "] "
            }
            write("\r\u{1B}[K\(bar)\(Self.mebibytes(Double(done))) MiB\(total.map { " of \(Self.mebibytes(Double($0))) MiB" } ?? "")\(percent), \(Self.mebibytes(rate)) MiB/s\(eta)")
            drewBar = true
        } else {
            write("jobstore: \(done)\(total.map { " of \($0)" } ?? "") bytes\(percent), \(Self.mebibytes(rate)) MiB/s\(eta)\n")
        }
    }

    static func mebibytes(_ bytes: Double) -> String { String(format: "%.1f", bytes / 1_048_576) }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
