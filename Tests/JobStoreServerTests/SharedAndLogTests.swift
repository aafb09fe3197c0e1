import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

class SharedAndLogTests: StoreTestCase {
    func testSharedFilesRoundTripAtTheRoot() async throws {
        let config = pattern(5000)
        try await client.writeShared(locator, "config.pickle", config)
        let awaited1 = try await client.readShared(locator, "config.pickle")
        XCTAssertEqual(awaited1, config)
        let awaited2 = try await client.sharedFileExists(SharedFileRequest(locator: locator, name: "config.pickle")).exists
        XCTAssertTrue(awaited2)
        try await client.writeShared(locator, "config.pickle", [1])
        let awaited3 = try await client.readShared(locator, "config.pickle")
        XCTAssertEqual(awaited3, [1])
        XCTAssertTrue(try objectExists("config.pickle"), "shared files are at the bucket root")
        let url = try await client.getSharedPublicUrl(PublicUrlRequest(locator: locator, name: "config.pickle")).url
        XCTAssertEqual(try fetch(url), [1])
    }

    func testSharedFileNamesAreValidatedAsToilDoes() async throws {
        for name in ["a/b", "../x", "", "sp ace", "uni\u{e9}", "x\u{0}"] {
            // A NUL is refused by the client stub itself: protobuf-c strings cannot carry one.
            let message = name.contains("\u{0}") ? "string fields may not contain NUL characters" : "Not a valid shared file name: '\(name)'."
            await assertFails(.invalidArgument, kind: .invalidName, message: message) {
                try await client.writeShared(locator, name, [1])
            }
            await assertFails(.invalidArgument, kind: .invalidName) { try await client.readShared(locator, name) }
        }
        for name in ["environment.pickle", "pid.log", "A-Z_0.9"] {
            try await client.writeShared(locator, name, Array(name.utf8))
            let awaited4 = try await client.readShared(locator, name)
            XCTAssertEqual(awaited4, Array(name.utf8))
        }
        // Toil's texts: the local store names the file, the AWS store its s3:// URL.
        let missing = isLocal ? "missing" : "s3://\(locator.split(separator: ":").last!)--toil/missing"
        await assertFails(.notFound, kind: .noSuchFile, message: "File '\(missing)' does not exist.") {
            try await client.readShared(locator, "missing")
        }
    }

    func testReadLogsOnceOrAll() async throws {
        for i in 0..<5 { _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("log \(i)".utf8))) }
        let first = try await client.readLogs(ReadLogsRequest(locator: locator))
        XCTAssertEqual(Set(first.messages.map { String(decoding: $0, as: UTF8.self) }), Set((0..<5).map { "log \($0)" }))
        XCTAssertEqual(first.nextPageToken, "")
        let awaited5 = try await client.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(awaited5, [], "read logs are not read again")
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("log 5".utf8)))
        let awaited6 = try await client.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(awaited6, [Array("log 5".utf8)])
        let all = try await client.readLogs(ReadLogsRequest(locator: locator, readAll: true))
        XCTAssertEqual(all.messages.count, 6)
        // Toil's marker object holds the newest log key read.
        let marker = try await client.readShared(locator, "most_recently_read_log.marker")
        XCTAssertTrue(String(decoding: marker, as: UTF8.self).hasPrefix("logs/"))
    }

    func testReadLogsPages() async throws {
        for i in 0..<7 { _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: [UInt8(i)])) }
        var got: [[UInt8]] = []
        var page = try await client.readLogs(ReadLogsRequest(locator: locator, maxMessages: 3))
        got += page.messages
        while !page.nextPageToken.isEmpty {
            page = try await client.readLogs(ReadLogsRequest(locator: locator, maxMessages: 3))
            got += page.messages
        }
        XCTAssertEqual(got.count, 7)
        var all: [[UInt8]] = []
        var token = ""
        repeat {
            let p = try await client.readLogs(ReadLogsRequest(locator: locator, readAll: true, pageToken: token, maxMessages: 2))
            all += p.messages
            token = p.nextPageToken
        } while !token.isEmpty
        XCTAssertEqual(all.count, 7)
    }
}
