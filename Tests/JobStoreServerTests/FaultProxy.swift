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

    /// Refuses every connection for `seconds` (and drops the ones open), then listens again.
    func outage(seconds: Double) throws {
        let response = try CurlSession().perform(CurlSession.Request(method: "GET", url: endpoint + "/__outage?seconds=\(seconds)"))
        guard response.status == 200 else { throw NSError(domain: "FaultProxy", code: 2) }
        // The proxy stops listening a moment after it answered: return once it refuses.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            guard let fd = PlainHTTP.connectLoopback(port: port) else { return }
            close(fd)
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw NSError(domain: "FaultProxy", code: 3, userInfo: [NSLocalizedDescriptionKey: "the proxy did not begin its outage"])
    }

    /// Checks the bucket straight on the S3 server with boto3 (`verify_bucket.py`): every object
    /// whole, every key the outcomes name holding one of its allowed contents. Prints the report.
    static func verifyBucket(upstream: String, bucket: String, outcomes: [ClientOutcome],
                             manifestDirectory: String) throws -> (status: Int32, report: String) {
        var expected: [String: [String]] = [:]
        for o in outcomes { expected.merge(o.expected.mapValues { Array($0).sorted() }) { a, _ in a } }
        let manifest = manifestDirectory + "/expected.json"
        try JSONSerialization.data(withJSONObject: ["objects": expected]).write(to: URL(fileURLWithPath: manifest))
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        verify.arguments = ["python3", script + "/verify_bucket.py", upstream, bucket, manifest]
        let out = Pipe()
        verify.standardOutput = out
        try verify.run()
        let report = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        verify.waitUntilExit()
        print("bucket check: \(report)")
        return (verify.terminationStatus, report)
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
