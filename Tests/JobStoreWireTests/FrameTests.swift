import JobStoreWire
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class FrameTests: XCTestCase {
    func testHeaderRoundTripsBigEndian() {
        let header = FrameHeader(payloadLength: 0x01020304, callID: 0xA0B0C0D0, code: 0x0E0F, type: .cancel, flags: 1)
        XCTAssertEqual(header.bytes, [1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0, 0x0E, 0x0F, 5, 1])
        let decoded = header.bytes.withUnsafeBytes { FrameHeader(decoding: $0) }
        XCTAssertEqual(decoded, header)
        XCTAssertTrue(decoded.carriesFD)
    }

    /// The example in Protos/WIRE.md, byte for byte.
    func testWireDocumentExample() throws {
        let request = JobRequest(locator: "local:/s", jobId: "j1").serialized()
        let header = FrameHeader(payloadLength: UInt32(request.count), callID: 1, code: JobStoreMethod.loadJob.rawValue, type: .request)
        XCTAssertEqual(hex(header.bytes + request),
                       "00 00 00 0e 00 00 00 01 00 0a 01 00 0a 08 6c 6f 63 61 6c 3a 2f 73 12 02 6a 31")
        let status = Status(code: 5, message: "The job 'j1' does not exist.", kind: .noSuchJob).serialized()
        let response = FrameHeader(payloadLength: UInt32(status.count), callID: 1, code: StatusCode.notFound.rawValue, type: .response)
        XCTAssertEqual(hex(response.bytes + status),
                       "00 00 00 22 00 00 00 01 00 05 02 00 08 05 12 1c 54 68 65 20 6a 6f 62 20 27 6a 31 27 20 64 6f 65 73 20 6e 6f 74 20 65 78 69 73 74 2e 18 01")
        XCTAssertEqual(JobStoreMethod.writeFileStream.rawValue, 15)
    }

    func testMessagesRoundTripThroughProtobufC() throws {
        let original = ListJobsResponse(jobs: [JobEntry(jobId: "a", size: 3, body: [0, 1, 255]), JobEntry(jobId: "b")],
                                        nextPageToken: "tok")
        XCTAssertEqual(try ListJobsResponse(serialized: original.serialized()), original)
        let logs = ReadLogsResponse(messages: [[], [0], Array("é".utf8)], nextPageToken: "")
        XCTAssertEqual(try ReadLogsResponse(serialized: logs.serialized()), logs)
        let read = ReadFileResponse(info: FileInfo(fileId: "x/files/y", size: UInt64.max, executable: true), linkPath: "/p")
        XCTAssertEqual(try ReadFileResponse(serialized: read.serialized()), read)
        XCTAssertEqual(try ReadFileResponse(serialized: ReadFileResponse().serialized()).info, nil)
        let hello = HelloResponse(protocolVersion: 1, serverVersion: "v", methods: ["A", "B"], maxMessageBytes: 7, maxDataBytes: 8)
        XCTAssertEqual(try HelloResponse(serialized: hello.serialized()), hello)
        XCTAssertEqual(Empty().serialized(), [])
    }

    func testGarbageIsADecodingErrorNotACrash() {
        var rng = SystemRandomNumberGenerator()
        var failures = 0
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<64, using: &rng)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if (try? WriteFileRequest(serialized: bytes)) == nil { failures += 1 }
            _ = try? Status(serialized: bytes)
            _ = try? ListJobsResponse(serialized: bytes)
        }
        XCTAssertGreaterThan(failures, 0)
        XCTAssertThrowsError(try JobRequest(serialized: [0x0a, 0x10, 0x41]))  // truncated string
    }

    func testContainsNULFindsNestedStrings() {
        XCTAssertTrue(JobRequest(locator: "a\u{0}b").containsNUL)
        XCTAssertTrue(ReadFileResponse(info: FileInfo(fileId: "\u{0}")).containsNUL)
        XCTAssertTrue(WriteFileRequest(hints: ["ok", "n\u{0}"]).containsNUL)
        XCTAssertFalse(JobBody(locator: "x", jobId: "y", body: [0, 0]).containsNUL)
    }

    func testFramesAndDescriptorsCrossASocketPair() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let writer = FrameWriter(fd: fds[0])
        let reader = FrameReader(fd: fds[1], bufferSize: 64)
        var pipeFDs: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        defer { close(pipeFDs[0]) }
        // Several frames, one carrying a descriptor, one larger than the reader's buffer.
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: 3, type: .request), payload: [1, 2, 3])
        try writer.send(FrameHeader(payloadLength: 0, callID: 2, code: 4, type: .request), payload: [9], passing: pipeFDs[1])
        close(pipeFDs[1])
        let big = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        try writer.send(FrameHeader(payloadLength: 0, callID: 3, code: 0, type: .data), payload: big)
        let limit: (FrameHeader) -> Int = { _ in 1 << 20 }
        let first = try XCTUnwrap(try reader.next(maxPayload: limit))
        XCTAssertEqual(first.payload, [1, 2, 3])
        XCTAssertNil(first.fd)
        let second = try XCTUnwrap(try reader.next(maxPayload: limit))
        XCTAssertEqual(second.header.callID, 2)
        let passed = try XCTUnwrap(second.fd)
        XCTAssertEqual(write(passed, "hi", 2), 2)
        close(passed)
        var buffer = [UInt8](repeating: 0, count: 2)
        XCTAssertEqual(read(pipeFDs[0], &buffer, 2), 2)
        XCTAssertEqual(buffer, Array("hi".utf8))
        let third = try XCTUnwrap(try reader.next(maxPayload: limit))
        XCTAssertEqual(third.payload, big)
        // Oversized frames and truncated frames are errors, not crashes.
        try writer.send(FrameHeader(payloadLength: 0, callID: 4, code: 0, type: .data), payload: [UInt8](repeating: 0, count: 100))
        XCTAssertThrowsError(try reader.next(maxPayload: { _ in 10 }))
        close(fds[0])
        fds[0] = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    }

    func testTruncatedFrameAtEOFIsAnError() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[1]) }
        let header = FrameHeader(payloadLength: 10, callID: 1, code: 0, type: .request).bytes
        XCTAssertEqual(write(fds[0], header, header.count), header.count)
        XCTAssertEqual(write(fds[0], [1, 2, 3], 3), 3)
        close(fds[0])
        let reader = FrameReader(fd: fds[1])
        XCTAssertThrowsError(try reader.next(maxPayload: { _ in 100 }))
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
    }
}
