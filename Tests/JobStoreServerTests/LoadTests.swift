import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// 64 concurrent clients × mixed job-store operations against SeaweedFS: no errors, every read
/// right, latency percentiles and the daemon's peak RSS reported. CI runs 200 operations per
/// client; `tools/reliability` runs the issue's 1,000 (JOBSTORE_LOAD_OPERATIONS).
final class LoadTests: XCTestCase {
    static let clients = 64
    static let perClient = Int(ProcessInfo.processInfo.environment["JOBSTORE_LOAD_OPERATIONS"] ?? "") ?? 200

    func testSixtyFourClientsOfMixedOperations() async throws {
        let daemon = try DaemonProcess.withS3(extraArguments: ["--part-size", "5MiB"])
        defer { daemon.stop() }
        let name = "jobstore-load-\(UUID().uuidString.prefix(8).lowercased())"
        let locator = "aws:us-east-1:\(name)"
        let setup = try daemon.connect()
        defer { setup.connection.close() }
        _ = try await setup.initialize(StoreRequest(locator: locator))
        let started = Date()
        let outcomes = try await withThrowingTaskGroup(of: ClientOutcome.self) { group in
            for index in 0..<Self.clients {
                group.addTask {
                    let client = try daemon.connect()
                    defer { client.connection.close() }
                    var worker = FaultWorker(client: client, locator: locator, index: index, seed: UInt64(index + 1) * 104_729)
                    worker.largeFileEvery = 0
                    for _ in 0..<Self.perClient { await worker.step() }
                    return worker.outcome
                }
            }
            return try await group.reduce(into: [ClientOutcome]()) { $0.append($1) }
        }
        let elapsed = Date().timeIntervalSince(started)
        let latencies = outcomes.flatMap(\.latencies).sorted()
        let failures = outcomes.reduce(into: [String: Int]()) { all, o in all.merge(o.failures) { $0 + $1 } }
        let peakRSS = Self.peakRSSKiB(daemon.process.processIdentifier)
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000 }
        print(String(format: "load: %d clients × %d operations in %.1f s (%.0f ops/s), p50 %.2f ms, p99 %.2f ms, max %.1f ms, daemon peak RSS %d MiB, errors %@",
                     Self.clients, Self.perClient, elapsed, Double(latencies.count) / elapsed, percentile(0.5), percentile(0.99),
                     (latencies.last ?? 0) * 1000, peakRSS / 1024, "\(failures)"))
        XCTAssertEqual(latencies.count, Self.clients * Self.perClient)
        XCTAssertEqual(failures, [:], "no operation failed")
        XCTAssertEqual(outcomes.flatMap(\.violations), [])
        XCTAssertLessThan(peakRSS, 512 * 1024, "the daemon's memory stays bounded")
        _ = try await setup.destroy(StoreRequest(locator: locator))
    }

    /// VmHWM of a process (its peak resident memory), in KiB.
    static func peakRSSKiB(_ pid: Int32) -> Int { statusField("VmHWM:", pid) }

    /// VmRSS of a process, in KiB.
    static func residentKiB(_ pid: Int32) -> Int { statusField("VmRSS:", pid) }

    static func statusField(_ name: String, _ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
