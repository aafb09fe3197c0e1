import Foundation
import ObjectStore
import XCTest

@testable import JobStoreCore

/// Where the daemon keeps the keys it read near the log marker (the window that delivers a slow
/// clock's logs exactly once): in the marker's metadata, so a poll costs what Toil's does.
final class LogWindowTests: XCTestCase {
    var root: String!
    var store: JobStore!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "logwindow-\(UUID().uuidString.prefix(8))"
        store = JobStore(locator: try Locator("local:\(root!)"), store: LocalObjectStore(durable: false))
        try store.initialize()
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func read() throws -> [String] {
        try store.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages.map { String(decoding: $0, as: UTF8.self) }
    }

    private func markerMetadata() throws -> [String: String] {
        try XCTUnwrap(try store.store.head(store.bucket, key: Keys.shared + Keys.logMarker, options: GetOptions())).metadata
    }

    private func stateObjectExists() throws -> Bool {
        try store.store.head(store.bucket, key: Keys.shared + Keys.logState, options: GetOptions()) != nil
    }

    private func writeLate(_ text: String, secondsBehind: Double) throws {
        let key = Keys.logs + JobStore.logName(Date().addingTimeInterval(-secondsBehind))
        try store.putChecked(key, MemorySource(Array(text.utf8)), sseKey: nil)
    }

    func testTheWindowTravelsInTheMarkersMetadata() throws {
        try store.writeLog(Array("now".utf8))
        XCTAssertEqual(try read(), ["now"])
        let inline = try XCTUnwrap(try markerMetadata()[Keys.Meta.logRecent])
        XCTAssertTrue(inline.hasPrefix("v1,"), inline)
        XCTAssertFalse(try stateObjectExists(), "no second object to read at every poll")
        try writeLate("late", secondsBehind: 600)
        XCTAssertEqual(try read(), ["late"])
        XCTAssertEqual(try read(), [])
    }

    func testAWindowTooLargeForMetadataGoesToItsOwnObject() throws {
        for i in 0..<40 { try writeLate("log \(i)", secondsBehind: Double(40 - i)) }
        XCTAssertEqual(try read().count, 40)
        XCTAssertTrue(try XCTUnwrap(try markerMetadata()[Keys.Meta.logRecent]).hasPrefix(JobStore.logStateInObject))
        XCTAssertTrue(try stateObjectExists())
        try writeLate("late", secondsBehind: 300)
        XCTAssertEqual(try read(), ["late"], "the window in the object still delivers a slow clock's log, once")
        XCTAssertEqual(try read(), [])
    }

    /// Two nodes' daemons read the logs in turn (a leader restarted elsewhere): the window one
    /// remembers is used only while the marker is still the one it wrote, even when the other
    /// wrote a marker of the same body.
    func testAWindowRememberedIsNotUsedOnceAnotherNodeWroteTheMarker() throws {
        let other = JobStore(locator: try Locator("local:\(root!)"), store: LocalObjectStore(durable: false))
        for i in 0..<40 { try writeLate("log \(i)", secondsBehind: Double(40 - i)) }
        XCTAssertEqual(try read().count, 40, "a window kept in its own object, and remembered here")
        try writeLate("late", secondsBehind: 300)
        let there = try other.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages
        XCTAssertEqual(there, [Array("late".utf8)], "the other node reads it, and writes a marker of the same body")
        XCTAssertEqual(try read(), [], "read once, on the other node")
    }

    /// A daemon of the version before kept the window only in the `.jobstored` object, beside a
    /// marker without metadata: a store it read goes on without a log read twice or lost.
    func testAStoreReadByAnOlderDaemonKeepsItsWindow() throws {
        try store.writeLog(Array("first".utf8))
        let first = try XCTUnwrap(store.store.list(store.bucket, prefix: Keys.logs, startAfter: "", maxKeys: 10).objects.last).key
        try store.putChecked(Keys.shared + Keys.logState,
                             MemorySource([UInt8](try JSONEncoder().encode(JobStore.LogState(marker: first, recent: [first])))), sseKey: nil)
        try store.putChecked(Keys.shared + Keys.logMarker, MemorySource(Array(first.utf8)), sseKey: nil)
        try writeLate("late", secondsBehind: 600)
        XCTAssertEqual(try read(), ["late"])
        XCTAssertEqual(try read(), [])
    }

    func testTheEncodingRefusesWhatAHeaderCannotCarry() {
        let keys: Set<String> = [Keys.logs + "2026-12-01_10:00:00.5a", Keys.logs + "2026-12-01_10:00:01b"]
        let value = JobStore.encodeLogWindow(keys)
        XCTAssertEqual(value, "v1,2026-12-01_10:00:00.5a,2026-12-01_10:00:01b")
        XCTAssertEqual(JobStore.decodeLogWindow(value!), keys)
        XCTAssertNil(JobStore.encodeLogWindow([Keys.logs + "a,b"]))
        XCTAssertNil(JobStore.encodeLogWindow([Keys.logs + "naïve"]))
        XCTAssertNil(JobStore.encodeLogWindow([Keys.logs + "with space"]))
        XCTAssertNil(JobStore.encodeLogWindow(Set((0..<40).map { Keys.logs + String(repeating: "x", count: 40) + "\($0)" })))
        XCTAssertEqual(JobStore.decodeLogWindow("v2,whatever"), [], "a format this version does not know means Toil's rule")
    }
}
