import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// `jobstore status` against a real daemon, in text and as JSON.
final class StatusCommandTests: XCTestCase {
    static var binary: String {
        URL(fileURLWithPath: DaemonProcess.binary).deletingLastPathComponent().appendingPathComponent("jobstore").path
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func testStatusShowsCountersAndTheCacheInTextAndJSON() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        _ = try await client.initialize(StoreRequest(locator: daemon.locator()))

        let text = try run(["status", "--socket", daemon.socket])
        XCTAssertEqual(text.status, 0)
        let version = try await client.stats().serverVersion
        XCTAssertTrue(text.output.contains("jobstored \(version)"), text.output)
        XCTAssertTrue(text.output.contains("cache \(daemon.directory)/cache"), text.output)
        XCTAssertTrue(text.output.contains("Initialize: 1 calls"), text.output)

        let json = try run(["status", "--json", "--socket", daemon.socket])
        XCTAssertEqual(json.status, 0)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["stores_open"] as? Int, 1)
        XCTAssertEqual((object["cache"] as? [String: Any])?["enabled"] as? Bool, true)
        let methods = try XCTUnwrap(object["methods"] as? [[String: Any]])
        XCTAssertTrue(methods.contains { $0["method"] as? String == "Initialize" && $0["calls"] as? Int == 1 })

        let missing = try run(["status", "--socket", daemon.directory + "/nothing.sock"])
        XCTAssertNotEqual(missing.status, 0, "no daemon: a failing exit status")
    }
}
