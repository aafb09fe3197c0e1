import Foundation
import S3
import XCTest

/// `Tests/Faults/fault_proxy.py` running between a daemon and the test S3 server: a share of
/// the requests meet 503s, 500s, lost answers, resets, truncated or stalled bodies, flipped bytes.
final class FaultProxy: @unchecked Sendable {
    let process = Process()
    let port: Int
    var endpoint: String { "http://127.0.0.1:\(port)" }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Faults").path
    }

    init(upstream: String, rate: Double, seed: Int, stallSeconds: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script + "/fault_proxy.py", upstream, "\(rate)", "\(seed)", "\(stallSeconds)"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw NSError(domain: "FaultProxy", code: 1, userInfo: [NSLocalizedDescriptionKey: "the fault proxy did not start"])
        }
        self.port = port
    }

    /// Faults injected so far, by kind, and "requests".
    func counts() throws -> [String: Int] {
        let response = try CurlSession().perform(CurlSession.Request(method: "GET", url: endpoint + "/__faults"))
        return try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int] ?? [:]
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: a child spawned from a dispatch thread inherits its blocked SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
