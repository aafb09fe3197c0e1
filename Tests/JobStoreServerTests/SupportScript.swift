import Foundation

/// A server of `Tests/Support/` run for one test: the script writes "PORT PID" to `portFile`
/// once it listens (and may add more ports after them: `otherPorts`). The pid is the server's own (`python3` may be a launcher, pyenv's shim,
/// that outlives a signal), and `stop()` kills that.
final class SupportScript: @unchecked Sendable {
    let port: Int
    let otherPorts: [Int]
    private let pid: pid_t
    private let process = Process()

    init(_ name: String, arguments: [String], portFile: String) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/\(name)").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        try process.run()
        var started = ""
        for _ in 0..<500 where started.isEmpty {
            started = (try? String(contentsOfFile: portFile, encoding: .utf8)) ?? ""
            if started.isEmpty { usleep(10_000) }
        }
        let fields = started.split(separator: " ")
        guard fields.count >= 2, let port = Int(fields[0]), let pid = pid_t(fields[1]) else {
            process.terminate()
            throw NSError(domain: "SupportScript", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) did not start"])
        }
        (self.port, self.pid) = (port, pid)
        otherPorts = fields.dropFirst(2).compactMap { Int($0) }
    }

    func stop() {
        kill(pid, SIGKILL)
        process.terminate()
    }
}
