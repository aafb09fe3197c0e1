import Foundation
@testable import S3
import XCTest

/// The journal's record of open uploads, and of CreateMultipartUpload requests whose answer a
/// crash may have lost (intents).
final class UploadJournalTests: XCTestCase {
    var path = ""

    override func setUp() {
        path = NSTemporaryDirectory() + "journal-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: path)
    }

    func testAnUploadIsOpenFromBeginToEnd() {
        let journal = UploadJournal(path: path)
        journal.begin(region: "us-east-1", bucket: "b", key: "k\twith tab", uploadID: "u1")
        journal.begin(region: "us-east-1", bucket: "b", key: "other", uploadID: "u2")
        journal.end(uploadID: "u2")
        XCTAssertEqual(UploadJournal(path: path).openUploads(),
                       [.init(region: "us-east-1", bucket: "b", key: "k\twith tab", uploadID: "u1")])
    }

    func testAnIntentIsOpenUntilSettled() {
        let journal = UploadJournal(path: path)
        let before = Date().timeIntervalSince1970.rounded(.down)
        let lost = journal.intend(region: "eu-west-1", bucket: "b", key: "files/a\tb")
        let done = journal.intend(region: "eu-west-1", bucket: "b", key: "files/c")
        journal.begin(region: "eu-west-1", bucket: "b", key: "files/c", uploadID: "u")
        journal.settle(done)
        let intents = UploadJournal(path: path).unsettledIntents()
        XCTAssertEqual(intents.map(\.key), ["files/a\tb"], "a crash before its settle leaves the intent")
        XCTAssertEqual(intents.first?.region, "eu-west-1")
        XCTAssertGreaterThanOrEqual(intents.first?.since ?? 0, before)
        journal.settle(lost)
        XCTAssertEqual(UploadJournal(path: path).unsettledIntents(), [])
        journal.reset()
        XCTAssertEqual(UploadJournal(path: path).openUploads(), [])
    }
}
