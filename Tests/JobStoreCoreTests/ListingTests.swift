import Foundation
@testable import JobStoreCore
import ObjectStore
import XCTest

/// ListFiles (operators' `jobstore files`) and the follower's view of logs.
final class ListingTests: XCTestCase {
    var root: String!

    override func setUp() {
        root = NSTemporaryDirectory() + "jobstore-listing-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Small pages walk flat files, then hinted ones, each exactly once; tombstones, shared
    /// files named "files…" and job markers are not files; a job's page lists only its own.
    func testPagesCoverEveryFileOnceAndSkipWhatIsNotAFile() throws {
        let store = JobStore(locator: try Locator("local:\(root!)"), store: LocalObjectStore(durable: false))
        try store.initialize()
        var expected: [String: UInt64] = [:]
        for i in 0..<5 {
            let file = try store.writeFile(FileWriteRequest(jobID: i < 2 ? "job1" : "", cleanup: i < 2), from: MemorySource(pattern(i)))
            expected[file.id] = UInt64(i)
        }
        for i in 0..<4 {
            let file = try store.writeFile(FileWriteRequest(basename: "out\(i)", hints: ["wf", "step"]), from: MemorySource(pattern(10 + i)))
            expected[file.id] = UInt64(10 + i)
        }
        let doomed = try store.writeFile(FileWriteRequest(basename: "gone", hints: ["wf"]), from: MemorySource([1]))
        try store.deleteFile(doomed.id)  // leaves a tombstone under files/wf/deleted/
        try store.writeSharedFile("files.txt", from: MemorySource([1, 2]))
        for pageSize in [1, 2, 3, 1000] {
            var seen: [String: UInt64] = [:]
            var token = ""
            var pages = 0
            repeat {
                let page = try store.listFiles(job: "", pageToken: token, pageSize: pageSize)
                XCTAssertLessThanOrEqual(page.files.count, pageSize)
                for file in page.files { XCTAssertNil(seen.updateValue(file.size, forKey: file.id), "\(file.id) twice") }
                token = page.nextPageToken
                pages += 1
            } while !token.isEmpty && pages < 100
            XCTAssertEqual(seen, expected, "page size \(pageSize)")
        }
        let ofJob = try store.listFiles(job: "job1", pageToken: "", pageSize: 1)
        XCTAssertEqual(ofJob.files.count, 1)
        let rest = try store.listFiles(job: "job1", pageToken: ofJob.nextPageToken, pageSize: 1)
        XCTAssertEqual(Set((ofJob.files + rest.files).map(\.size)), [0, 1])
        XCTAssertThrowsError(try store.listFiles(job: "", pageToken: "jobs/x", pageSize: 0))
    }

    /// A follower that re-reads with an overlap sees a log keyed before one it already read.
    func testOverlapFindsALogKeyedBeforeTheToken() throws {
        let store = JobStore(locator: try Locator("local:\(root!)"), store: LocalObjectStore(durable: false))
        try store.initialize()
        try store.writeLog(Array("first".utf8))
        let page = try store.readLogs(readAll: true, pageToken: "", maxMessages: 0)
        XCTAssertEqual(page.keys.count, 1)
        XCTAssertEqual(page.resumeToken, page.keys.first)
        // A slow upload: keyed 30 s ago, visible only now.
        try store.putChecked(Keys.logs + JobStore.logName(Date().addingTimeInterval(-30)), MemorySource(Array("late".utf8)), sseKey: nil)
        XCTAssertEqual(try store.readLogs(readAll: true, pageToken: page.resumeToken, maxMessages: 0).messages, [])
        let again = try store.readLogs(readAll: true, pageToken: page.resumeToken, maxMessages: 0, overlapSeconds: 300)
        XCTAssertEqual(again.messages, [Array("late".utf8), Array("first".utf8)])
        XCTAssertEqual(again.resumeToken, page.resumeToken, "the token never moves back")
    }

    func pattern(_ n: Int) -> [UInt8] { [UInt8](repeating: 7, count: n) }
}
