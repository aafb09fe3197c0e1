import Foundation
import JobStoreClient
import JobStoreWire
import ObjectStore
import S3
import XCTest

/// kill -9 of the daemon in the middle of an upload: nothing partial is visible, and the next
/// start aborts the multipart upload the dead daemon left open (and only its own).
final class CrashRecoveryTests: XCTestCase, @unchecked Sendable {
    /// A scratch directory (the daemons' cache and journal) and an aws: store of its own.
    struct Rig {
        let scratch = NSTemporaryDirectory() + "crash-\(UUID().uuidString.prefix(8))"
        let name = "jobstore-crash-\(UUID().uuidString.prefix(8).lowercased())"
        var arguments: [String] { ["--part-size", "5MiB", "--cache-dir", scratch + "/cache"] }
        var locator: String { "aws:us-east-1:\(name)" }
        var bucket: String { name + "--toil" }
        var journal: String { scratch + "/cache/uploads.journal" }
        let s3 = DaemonProcess.testS3Store()

        /// A multipart upload begun straight on S3 (another node's, or the dead daemon's).
        func createUpload(_ key: String) throws -> String {
            let xml = String(decoding: try s3.client.send("POST", bucket: bucket, key: key, query: [("uploads", "")]).body, as: UTF8.self)
            return try XCTUnwrap(xml.range(of: "<UploadId>").flatMap { open in
                xml.range(of: "</UploadId>").map { String(xml[open.upperBound..<$0.lowerBound]) }
            })
        }

        /// The uploads left in the bucket once a new daemon had up to 15 s to abort its own.
        func uploadsLeft(keeping expected: Int) throws -> [S3ObjectStore.Upload] {
            let until = Date().addingTimeInterval(15)
            var left = try s3.listMultipartUploads(bucket)
            while Date() < until && left.count > expected {
                usleep(50_000)
                left = try s3.listMultipartUploads(bucket)
            }
            return left
        }
    }

    func testTheNextStartAbortsTheUploadsACrashLeftOpen() async throws {
        let rig = Rig()
        defer { try? FileManager.default.removeItem(atPath: rig.scratch) }
        let (arguments, locator, bucket, s3) = (rig.arguments, rig.locator, rig.bucket, rig.s3)

        let first = try DaemonProcess.withS3(extraArguments: arguments)
        let client = try first.connect()
        _ = try await client.initialize(StoreRequest(locator: locator))
        // Another node's upload in the same bucket must survive our recovery.
        let foreignID = try rig.createUpload("files-flat/foreign/f")

        let upload = Task {
            _ = try? await client.writeFileStream(WriteFileRequest(locator: locator, basename: "big")) { stream in
                for i in 0..<3 { try await stream.write(pattern(4 << 20, seed: UInt8(i))) }  // 12 MiB: parts are going up
                try await Task.sleep(nanoseconds: 60_000_000_000)
            }
        }
        let deadline = Date().addingTimeInterval(20)
        var open: [S3ObjectStore.Upload] = []
        while Date() < deadline {
            open = try s3.listMultipartUploads(bucket).filter { $0.uploadID != foreignID }
            if !open.isEmpty { break }
            usleep(20_000)
        }
        XCTAssertEqual(open.count, 1, "the daemon has a multipart upload open")
        // The crash this test is about comes after the daemon journaled the upload: S3 lists it
        // a moment before (CreateMultipartUpload answers, then the journal line is written),
        // and a kill in that gap (seen once in CI) leaves an upload no journal names.
        let journal = UploadJournal(path: rig.journal)
        while Date() < deadline && !journal.openUploads().contains(where: { $0.uploadID == open.first?.uploadID }) {
            usleep(5_000)
        }
        XCTAssertEqual(journal.openUploads().map(\.uploadID), open.map(\.uploadID), "the daemon journaled its upload")
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        upload.cancel()
        client.connection.close()
        XCTAssertEqual(try s3.listMultipartUploads(bucket).filter { $0.uploadID != foreignID }.count, 1, "left open by the crash")
        XCTAssertEqual(try s3.list(bucket, prefix: "files-flat/", startAfter: "", maxKeys: 10).objects.count, 0,
                       "nothing partial is visible")

        let second = try DaemonProcess.withS3(extraArguments: arguments)
        defer { second.stop() }
        XCTAssertEqual(try rig.uploadsLeft(keeping: 1).map(\.uploadID), [foreignID], "our leftover aborted, the other node's kept")
        try s3.abortUpload(bucket, key: "files-flat/foreign/f", uploadID: foreignID)
        let c2 = try second.connect()
        _ = try await c2.destroy(StoreRequest(locator: locator))
        c2.connection.close()
        first.stop()
    }

    /// A kill between CreateMultipartUpload's answer and the journal's `begin` line leaves an
    /// upload no line names, only the `intent` written before the request. This is the journal
    /// and the bucket such a crash leaves (the upload made here as the dead daemon made it):
    /// the next start aborts that key's upload, and keeps another key's.
    func testTheNextStartAbortsAnUploadWhoseAnswerTheCrashLost() async throws {
        let rig = Rig()
        defer { try? FileManager.default.removeItem(atPath: rig.scratch) }
        let (arguments, locator, bucket, s3) = (rig.arguments, rig.locator, rig.bucket, rig.s3)
        let first = try DaemonProcess.withS3(extraArguments: arguments)
        let client = try first.connect()
        _ = try await client.initialize(StoreRequest(locator: locator))
        client.connection.close()
        _ = first.stop()

        let lostKey = "files-flat/lost/big", foreignKey = "files-flat/foreign/f"
        let foreignID = try rig.createUpload(foreignKey)
        let since = Int(Date().timeIntervalSince1970)
        let journal = rig.journal
        try "intent\tus-east-1\t\(bucket)\t\(UUID().uuidString.lowercased())\t\(since)\t\(lostKey)\n".write(toFile: journal, atomically: true, encoding: .utf8)
        _ = try rig.createUpload(lostKey)
        XCTAssertEqual(try s3.listMultipartUploads(bucket).count, 2)

        let second = try DaemonProcess.withS3(extraArguments: arguments)
        defer { second.stop() }
        XCTAssertEqual(try rig.uploadsLeft(keeping: 1).map(\.uploadID), [foreignID], "the lost answer's upload aborted, another key's kept")
        try s3.abortUpload(bucket, key: foreignKey, uploadID: foreignID)
        let c2 = try second.connect()
        _ = try await c2.destroy(StoreRequest(locator: locator))
        c2.connection.close()
    }
}
