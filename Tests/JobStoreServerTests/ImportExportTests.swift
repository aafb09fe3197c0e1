import Foundation
import JobStoreClient
import JobStoreWire
import ObjectStore
import S3
import XCTest

/// ImportFile and ExportFile with s3://, http:// and file:// URLs, on an S3 store (server-side
/// copies) and a local store (streamed), against the real SeaweedFS.
final class ImportExportTests: XCTestCase {
    var daemon: DaemonProcess!
    var client: JobStoreClient!
    var s3: S3ObjectStore!
    let outside = "jobstore-outside-\(UUID().uuidString.prefix(8).lowercased())"
    let storeName = "jobstore-io-\(UUID().uuidString.prefix(8).lowercased())"
    var awsLocator: String { "aws:us-east-1:\(storeName)" }

    override func setUp() async throws {
        daemon = try DaemonProcess.withS3(extraArguments: ["--part-size", "5MiB"])
        client = try daemon.connect()
        s3 = DaemonProcess.testS3Store(pool: BufferPool(partSize: 5 << 20, capacity: 4))
        try s3.createBucket(outside)
        _ = try await client.initialize(StoreRequest(locator: awsLocator))
    }

    override func tearDown() async throws {
        _ = try? await client?.destroy(StoreRequest(locator: awsLocator))
        try? s3?.destroyBucket(outside)
        client?.connection.close()
        daemon?.stop()
    }

    func outsideObject(_ key: String) throws -> [UInt8] {
        let sink = MemorySink()
        try s3.get(outside, key: key, into: sink, options: GetOptions())
        return sink.bytes
    }

    func testS3ImportsAndExportsOnAnS3Store() async throws {
        let big = pattern(12 << 20, seed: 4)  // three parts of 5 MiB: a multipart object
        try s3.put(outside, key: "inputs/reads.fq", body: MemorySource(big), options: PutOptions(metadata: ["jobstore-executable": "1"]))
        let imported = try await client.importFile(ImportFileRequest(locator: awsLocator, url: "s3://\(outside)/inputs/reads.fq"))
        XCTAssertEqual(imported.size, UInt64(big.count))
        XCTAssertTrue(imported.executable, "the source's executable mark comes along")
        XCTAssertFalse(imported.fileId.isEmpty)
        let back = try await client.download(awsLocator, imported.fileId)
        XCTAssertTrue(back == big)
        XCTAssertNotNil(try s3.head("\(storeName)--toil", key: "files-flat/\(imported.fileId)/reads.fq", options: GetOptions()),
                        "Toil's layout: files-flat/ID/BASENAME")

        let shared = try await client.importFile(ImportFileRequest(locator: awsLocator, url: "s3://\(outside)/inputs/reads.fq",
                                                                   sharedFileName: "reads.shared"))
        XCTAssertEqual(shared.fileId, "")
        let sharedBack = try await client.readShared(awsLocator, "reads.shared")
        XCTAssertTrue(sharedBack == big)

        let written = try await client.upload(WriteFileRequest(locator: awsLocator, basename: "out.txt"), pattern(300_000, seed: 5))
        let exported = try await client.exportFile(ExportFileRequest(locator: awsLocator, fileId: written.fileId, url: "s3://\(outside)/results/out.txt"))
        XCTAssertEqual(exported.size, 300_000)
        XCTAssertTrue(try outsideObject("results/out.txt") == pattern(300_000, seed: 5))

        await assertFails(.notFound) {
            try await client.importFile(ImportFileRequest(locator: awsLocator, url: "s3://\(outside)/missing"))
        }
        await assertFails(.invalidArgument, message: "Unsupported URL scheme 'gs' in gs://b/k: expected s3, http, https or file.") {
            try await client.importFile(ImportFileRequest(locator: awsLocator, url: "gs://b/k"))
        }
        await assertFails(.invalidArgument) {
            try await client.exportFile(ExportFileRequest(locator: awsLocator, fileId: written.fileId, url: "http://127.0.0.1:1/x"))
        }
        await assertFails(.notFound, kind: .noSuchFile) {
            try await client.exportFile(ExportFileRequest(locator: awsLocator, fileId: "no-such-file", url: "s3://\(outside)/x"))
        }
    }

    /// A local store reaches S3 through the same session; the bytes stream through a pipe.
    func testS3ImportsAndExportsOnALocalStore() async throws {
        let locator = daemon.locator()
        _ = try await client.initialize(StoreRequest(locator: locator))
        let body = pattern(11 << 20, seed: 6)
        try s3.put(outside, key: "in.bin", body: MemorySource(body), options: PutOptions())
        let imported = try await client.importFile(ImportFileRequest(locator: locator, url: "s3://\(outside)/in.bin"))
        let back = try await client.download(locator, imported.fileId)
        XCTAssertTrue(back == body)
        _ = try await client.exportFile(ExportFileRequest(locator: locator, fileId: imported.fileId, url: "s3://\(outside)/copy/in.bin"))
        XCTAssertTrue(try outsideObject("copy/in.bin") == body)
    }

    /// http(s): a presigned URL of the S3 server itself, fetched in ranged chunks.
    func testHTTPImportFromAPresignedURL() async throws {
        let body = pattern(9 << 20 + 5, seed: 7)
        try s3.put(outside, key: "web/page.bin", body: MemorySource(body), options: PutOptions())
        let url = try s3.url(outside, key: "web/page.bin", expiresIn: 600)
        let imported = try await client.importFile(ImportFileRequest(locator: awsLocator, url: url))
        XCTAssertEqual(imported.size, UInt64(body.count))
        let back = try await client.download(awsLocator, imported.fileId)
        XCTAssertTrue(back == body)
        try s3.put(outside, key: "web/empty", body: MemorySource([]), options: PutOptions())
        let empty = try await client.importFile(ImportFileRequest(locator: awsLocator, url: try s3.url(outside, key: "web/empty", expiresIn: 600)))
        XCTAssertEqual(empty.size, 0)
        await assertFails(.notFound) {
            try await client.importFile(ImportFileRequest(locator: awsLocator, url: try s3.url(outside, key: "web/missing", expiresIn: 600)))
        }
    }

    func testFileURLsKeepTheExecutableBitAndWriteAtomically() async throws {
        let source = daemon.directory + "/tool.sh"
        FileManager.default.createFile(atPath: source, contents: Data("#!/bin/sh\necho hi\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        let imported = try await client.importFile(ImportFileRequest(locator: awsLocator, url: "file://\(source)"))
        XCTAssertTrue(imported.executable)
        let target = daemon.directory + "/out/tool.sh"
        try FileManager.default.createDirectory(atPath: daemon.directory + "/out", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: target, contents: Data("old".utf8))
        let exported = try await client.exportFile(ExportFileRequest(locator: awsLocator, fileId: imported.fileId, url: "file://\(target)"))
        XCTAssertEqual(exported.size, 18)
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "#!/bin/sh\necho hi\n")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: target))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: daemon.directory + "/out"), ["tool.sh"], "no temporary file left")
        // A failed export leaves the old content.
        await assertFails(.notFound, kind: .noSuchFile) {
            try await client.exportFile(ExportFileRequest(locator: awsLocator, fileId: "gone", url: "file://\(target)"))
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "#!/bin/sh\necho hi\n")
        await assertFails(.notFound) {
            try await client.importFile(ImportFileRequest(locator: awsLocator, url: "file://\(daemon.directory)/missing"))
        }
        await assertFails(.invalidArgument) {
            try await client.importFile(ImportFileRequest(locator: awsLocator, url: "file://\(daemon.directory)"))
        }
    }

    /// Imports into a store with an SSE-C key are encrypted with it (copy and stream alike).
    func testImportsIntoAnEncryptedStore() async throws {
        let key = pattern(32, seed: 9)
        let locator = "aws:us-east-1:\(storeName)-enc"
        let withKey = StoreRequest(locator: locator, sseKey: key)
        _ = try await client.initialize(withKey)
        defer { Task { [client] in _ = try? await client?.destroy(withKey) } }
        try s3.put(outside, key: "plain.bin", body: MemorySource(pattern(6 << 20)), options: PutOptions())
        let imported = try await client.importFile(ImportFileRequest(locator: locator, url: "s3://\(outside)/plain.bin", sseKey: key))
        let back = try await client.download(locator, imported.fileId, sseKey: key)
        XCTAssertTrue(back == pattern(6 << 20))
        XCTAssertThrowsError(try s3.get("\(storeName)-enc--toil", key: "files-flat/\(imported.fileId)/plain.bin", into: MemorySink(),
                                        options: GetOptions()), "encrypted at rest with the store's key")
        _ = try await client.exportFile(ExportFileRequest(locator: locator, fileId: imported.fileId, url: "s3://\(outside)/decrypted.bin",
                                                        sseKey: key))
        XCTAssertTrue(try outsideObject("decrypted.bin") == pattern(6 << 20), "exports are readable without the key")
        _ = try await client.destroy(withKey)
    }
}
