import Foundation
@testable import JobStoreCore
import ObjectStore
import XCTest

final class LocatorTests: XCTestCase {
    func testParsesToilLocators() throws {
        XCTAssertEqual(try Locator("aws:us-west-2:my-store"), .aws(region: "us-west-2", name: "my-store"))
        XCTAssertEqual(try Locator("aws:us-west-2:my-store").bucket, "my-store--toil")
        XCTAssertEqual(try Locator("local:/tmp/x/"), .local(path: "/tmp/x"))
        XCTAssertEqual(try Locator("local:/tmp/x").description, "local:/tmp/x")
    }

    func testLengthCountsCharactersAsPythonDoes() {
        XCTAssertThrowsError(try Locator("aws:us-east-1:é")) {
            XCTAssertEqual(($0 as? JobStoreError)?.message, "AWS jobstore name must be between 3 and 56 chars: é (len: 1)")
        }
    }
}

final class HintTreeTests: XCTestCase {
    func testSanitizingMatchesToil() {
        XCTAssertEqual(HintTree.sanitize("my wf!"), "mywf")
        XCTAssertEqual(HintTree.sanitize("files"), "")
        XCTAssertEqual(HintTree.sanitize(".."), "")
        XCTAssertEqual(HintTree.sanitize(String(repeating: "a", count: 50)).count, 40)
        XCTAssertEqual(HintTree.hintsString(["a", "deleted", "b/c", "ü"]), "a/bc")
        XCTAssertEqual(HintTree.hintsString((0..<10).map { _ in String(repeating: "x", count: 40) }).count, 40 * 2 + 1)
        XCTAssertEqual(HintTree.tombstone(of: "a/b/files/3/out"), "a/b/deleted/3/out")
    }
}

final class LogTests: XCTestCase {
    var root: String!

    override func setUp() {
        root = NSTemporaryDirectory() + "core-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testLogNamesLookLikeToils() {
        let name = JobStore.logName(Date(timeIntervalSince1970: 1_700_000_000.25))
        XCTAssertEqual(name.count, "2023-11-14_22:13:20.250000".count + 36)
        XCTAssertTrue(name.contains("_") && !name.contains(" "))
        XCTAssertEqual(JobStore.logTimestamp(Date(timeIntervalSince1970: 1_700_000_000)).count, 19, "no fraction when it is zero")
        let shifted = JobStore.shiftedLogKey("logs/" + JobStore.logTimestamp(Date(timeIntervalSince1970: 1_700_003_600)) + "x", by: -3600)
        XCTAssertEqual(shifted, "logs/" + JobStore.logTimestamp(Date(timeIntervalSince1970: 1_700_000_000)))
    }

    /// A log written by a node whose clock is behind the reader's marker is still delivered
    /// (Toil would skip it forever), and only once.
    func testLateLogsFromASlowClockAreDeliveredOnce() throws {
        let store = JobStore(locator: try Locator("local:\(root!)"), store: LocalObjectStore(durable: false))
        try store.initialize()
        try store.writeLog(Array("now".utf8))
        XCTAssertEqual(try store.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages, [Array("now".utf8)])
        // Another node, clock 10 minutes slow, writes a log after the reader advanced its marker.
        let slow = Keys.logs + JobStore.logName(Date().addingTimeInterval(-600))
        try store.putChecked(slow, MemorySource(Array("late".utf8)), sseKey: nil)
        XCTAssertEqual(try store.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages, [Array("late".utf8)])
        XCTAssertEqual(try store.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages, [])
        XCTAssertEqual(try store.readLogs(readAll: true, pageToken: "", maxMessages: 0).messages.count, 2)
    }

    /// A marker advanced by Toil itself (no daemon state beside it) keeps Toil's meaning.
    func testAMarkerWrittenByToilIsHonoured() throws {
        let store = JobStore(locator: try Locator("local:\(root!)"), store: LocalObjectStore(durable: false))
        try store.initialize()
        try store.writeLog(Array("old".utf8))
        let last = try store.store.list(store.bucket, prefix: Keys.logs, startAfter: "", maxKeys: 10).objects.last!.key
        try store.putChecked(Keys.logMarker, MemorySource(Array(last.utf8)), sseKey: nil)
        XCTAssertEqual(try store.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages, [])
        try store.writeLog(Array("new".utf8))
        XCTAssertEqual(try store.readLogs(readAll: false, pageToken: "", maxMessages: 0).messages, [Array("new".utf8)])
    }
}

final class ResumeTests: XCTestCase {
    func testResumeRemovesOldLeftoversOfInterruptedWrites() throws {
        let root = NSTemporaryDirectory() + "resume-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = JobStore(locator: try Locator("local:\(root)"), store: LocalObjectStore(durable: false))
        try store.initialize()
        try store.writeJob("j", body: [1])
        let orphan = root + "/versions/orphan"
        let fresh = root + "/versions/fresh-orphan"
        try FileManager.default.createDirectory(atPath: orphan, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: fresh, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7 * 3600)], ofItemAtPath: orphan)
        try store.resume()
        XCTAssertFalse(FileManager.default.fileExists(atPath: orphan))
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh), "a write that may still be in progress is kept")
        XCTAssertEqual(try store.loadJob("j"), [1])
    }
}
