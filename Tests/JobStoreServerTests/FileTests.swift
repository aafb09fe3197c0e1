import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

class FileTests: StoreTestCase {
    func testStreamsOfEverySizeRoundTrip() async throws {
        for size in [0, 1, 1 << 20, 100 << 20] {
            let bytes = pattern(size, seed: UInt8(size % 251))
            let info = try await client.upload(WriteFileRequest(locator: locator, basename: "f\(size)"), bytes, chunk: 1 << 20)
            XCTAssertEqual(info.size, UInt64(size))
            XCTAssertFalse(info.executable)
            let back = try await client.download(locator, info.fileId)
            XCTAssertEqual(back.count, size)
            XCTAssertTrue(back == bytes, "content of \(size) bytes differs")
            let awaited1 = try await client.getFileSize(FileRequest(locator: locator, fileId: info.fileId)).size
            XCTAssertEqual(awaited1, UInt64(size))
        }
    }

    func testWriteAndReadThroughPassedDescriptors() async throws {
        let source = daemon.directory + "/tool.sh"
        let bytes = pattern(3 << 20)
        FileManager.default.createFile(atPath: source, contents: Data(bytes), attributes: [.posixPermissions: 0o755])
        let fd = open(source, O_RDONLY)
        defer { close(fd) }
        let info = try await client.writeFile(WriteFileRequest(locator: locator, basename: "tool.sh"), fd: fd)
        XCTAssertEqual(info.size, UInt64(bytes.count))
        XCTAssertTrue(info.executable, "the owner-execute bit travels with the file")

        let target = daemon.directory + "/copy"
        let out = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let read = try await client.readFile(ReadFileRequest(locator: locator, fileId: info.fileId), fd: out)
        close(out)
        XCTAssertEqual(read.info?.size, UInt64(bytes.count))
        XCTAssertEqual(read.info?.executable, true)
        XCTAssertEqual(read.linkPath, "")
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: target))), bytes)

        // Local: the store's own file; S3: the node cache's entry.
        let linked = try await client.readFile(ReadFileRequest(locator: locator, fileId: info.fileId, linkOk: true))
        XCTAssertFalse(linked.linkPath.isEmpty)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: linked.linkPath))), bytes)
        XCTAssertFalse(FileManager.default.isWritableFile(atPath: linked.linkPath) && getuid() != 0 ? true : false)
        var st = stat()
        XCTAssertEqual(stat(linked.linkPath, &st), 0)
        XCTAssertEqual(st.st_mode & 0o222, 0, "a linkable path is read-only")
        XCTAssertNotEqual(st.st_mode & 0o100, 0, "and keeps the executable bit")
    }

    func testUpdateFromAPassedDescriptor() async throws {
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "script"), [1, 2, 3])
        let source = daemon.directory + "/new-script"
        let bytes = pattern(1 << 20, seed: 9)
        FileManager.default.createFile(atPath: source, contents: Data(bytes), attributes: [.posixPermissions: 0o700])
        let fd = open(source, O_RDONLY)
        defer { close(fd) }
        let updated = try await client.updateFile(UpdateFileRequest(locator: locator, fileId: info.fileId), fd: fd)
        XCTAssertEqual(updated.fileId, info.fileId)
        XCTAssertEqual(updated.size, UInt64(bytes.count))
        XCTAssertTrue(updated.executable)
        let back = try await client.download(locator, info.fileId)
        XCTAssertTrue(back == bytes)
        let missing = open(source, O_RDONLY)
        defer { close(missing) }
        await assertFails(.notFound, kind: .noSuchFile) {
            try await client.updateFile(UpdateFileRequest(locator: locator, fileId: "no-such-file"), fd: missing)
        }
    }

    func testDescriptorIsRequiredWhereTheProtoSaysSo() async throws {
        await assertFails(.invalidArgument) {
            try await JobStoreErrorProbe.writeFileWithoutDescriptor(client, locator)
        }
        let info = try await client.upload(WriteFileRequest(locator: locator), [1])
        if isLocal {
            // The local store can always answer with a path, so link_ok needs no descriptor...
            _ = try await client.readFile(ReadFileRequest(locator: locator, fileId: info.fileId, linkOk: true))
        }
        // ...but a plain read does.
        await assertFails(.invalidArgument) { try await client.readFile(ReadFileRequest(locator: locator, fileId: info.fileId)) }
    }

    func testUpdateIsAtomicWhenTheWriterFailsMidStream() async throws {
        let old = pattern(2 << 20, seed: 1)
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "data"), old)

        struct WriterFailed: Error {}
        do {
            _ = try await client.updateFileStream(UpdateFileRequest(locator: locator, fileId: info.fileId)) { upload in
                try await upload.write(pattern(1 << 20, seed: 2))
                throw WriterFailed()
            }
            XCTFail("the update should fail")
        } catch is WriterFailed {}
        let awaited2 = try await client.download(locator, info.fileId) == old
        XCTAssertTrue(awaited2)

        // A writer whose connection dies mid-stream (the worker was killed).
        let doomed = try daemon.connect()
        do {
            _ = try await doomed.updateFileStream(UpdateFileRequest(locator: locator, fileId: info.fileId)) { upload in
                try await upload.write(pattern(1 << 20, seed: 3))
                doomed.connection.close()
                try await Task.sleep(nanoseconds: 50_000_000)
                try await upload.write(pattern(1 << 20, seed: 3))
            }
            XCTFail("the update should fail")
        } catch {}
        try await Task.sleep(nanoseconds: 200_000_000)
        let awaited3 = try await client.download(locator, info.fileId) == old
        XCTAssertTrue(awaited3)

        let new = pattern(3 << 20, seed: 4)
        let updated = try await client.updateFileStream(UpdateFileRequest(locator: locator, fileId: info.fileId, executable: true)) {
            try await $0.write(new)
        }
        XCTAssertEqual(updated.size, UInt64(new.count))
        XCTAssertTrue(updated.executable)
        let awaited4 = try await client.download(locator, info.fileId) == new
        XCTAssertTrue(awaited4)
    }

    func testAnInterruptedWriteLeavesNothing() async throws {
        struct WriterFailed: Error {}
        do {
            _ = try await client.writeFileStream(WriteFileRequest(locator: locator, jobId: "j", cleanup: true, basename: "x",
                                                                  hints: ["wf"])) { upload in
                try await upload.write(pattern(1 << 20))
                throw WriterFailed()
            }
        } catch is WriterFailed {}
        try await Task.sleep(nanoseconds: 100_000_000)
        XCTAssertEqual(try storedKeys(), [], "no file, hint slot, association or unfinished upload remains")
    }

    func testHintedFilesGetReadableDistinctIds() async throws {
        let a = try await client.upload(WriteFileRequest(locator: locator, basename: "out.txt", hints: ["my wf!", "task/1", "files"]), [1])
        let b = try await client.upload(WriteFileRequest(locator: locator, basename: "out.txt", hints: ["my wf!", "task/1"]), [2])
        XCTAssertEqual(a.fileId, "mywf/task1/files/out.txt")
        XCTAssertEqual(b.fileId, "mywf/task1/files/0/out.txt")
        let awaited5 = try await client.download(locator, a.fileId)
        XCTAssertEqual(awaited5, [1])
        _ = try await client.deleteFile(FileRequest(locator: locator, fileId: a.fileId))
        // A deleted slot is tombstoned and never handed out again.
        let c = try await client.upload(WriteFileRequest(locator: locator, basename: "out.txt", hints: ["mywf", "task1"]), [3])
        XCTAssertEqual(c.fileId, "mywf/task1/files/1/out.txt")
        XCTAssertTrue(try objectExists("files/mywf/task1/deleted/out.txt"))
    }

    func testUnknownAndHostileFileIds() async throws {
        let missing = "0b5e0a6e-0000-4000-8000-000000000000"
        await assertFails(.notFound, kind: .noSuchFile, message: "File '\(missing)' does not exist.") {
            try await client.download(locator, missing)
        }
        await assertFails(.notFound, kind: .noSuchFile) { try await client.getFileSize(FileRequest(locator: locator, fileId: missing)) }
        await assertFails(.notFound, kind: .noSuchFile) {
            try await client.updateFileStream(UpdateFileRequest(locator: locator, fileId: missing)) { try await $0.write([1]) }
        }
        let awaited6 = try await client.fileExists(FileRequest(locator: locator, fileId: missing)).exists
        XCTAssertFalse(awaited6)
        _ = try await client.deleteFile(FileRequest(locator: locator, fileId: missing))  // idempotent
        for id in ["../../etc/passwd", "a/../b", "/abs", "x\u{0}y", "a/b", "", "a//files/b"] {
            await assertFails(.invalidArgument, kind: .invalidName) { try await client.download(locator, id) }
        }
        for basename in ["../up", "a/b", "..", "x\u{1}y"] {
            await assertFails(.invalidArgument, kind: .invalidName) {
                try await client.upload(WriteFileRequest(locator: locator, basename: basename), [1])
            }
        }
    }

    func testEmptyFilesAndDefaultBasenames() async throws {
        let empty = try await client.getEmptyFileStoreId(WriteFileRequest(locator: locator))
        XCTAssertEqual(empty.size, 0)
        XCTAssertTrue(try objectExists("files-flat/\(empty.fileId)/empty"))
        let streamed = try await client.upload(WriteFileRequest(locator: locator), [1])
        XCTAssertTrue(try objectExists("files-flat/\(streamed.fileId)/stream"))
        let awaited7 = try await client.download(locator, empty.fileId)
        XCTAssertEqual(awaited7, [])
    }

    func testPublicUrlPointsAtTheBytes() async throws {
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "u"), [7, 8, 9])
        let url = try await client.getPublicUrl(PublicUrlRequest(locator: locator, fileId: info.fileId)).url
        XCTAssertTrue(url.hasPrefix(isLocal ? "file://" : "http://"), url)
        XCTAssertEqual(try fetch(url), [7, 8, 9])
    }

    func testCorruptionIsDetectedOnRead() async throws {
        for size in [1000, 6 << 20] {  // one request; on S3 also a multipart object (checksum in its tags)
            let info = try await client.upload(WriteFileRequest(locator: locator, basename: "c"), pattern(size))
            var bytes = pattern(size)
            bytes[500] ^= 0xff
            try overwriteBehindTheDaemon("files-flat/\(info.fileId)/c", bytes)
            await assertFails(.dataLoss) { try await client.download(locator, info.fileId) }
        }
    }
}

/// Sends WriteFile without the descriptor its proto requires, bypassing the stub's signature.
enum JobStoreErrorProbe {
    static func writeFileWithoutDescriptor(_ client: JobStoreClient, _ locator: String) async throws -> [UInt8] {
        try await client.connection.unary(.writeFile, WriteFileRequest(locator: locator).serialized())
    }
}
