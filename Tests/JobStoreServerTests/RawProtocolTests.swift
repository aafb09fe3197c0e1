import Foundation
import JobStoreWire
import XCTest

/// Frames a broken or hostile client might send, straight onto the socket. The server runs in
/// this process (InProcessServer): what is tested is its dispatch, limits and errors.
final class RawProtocolTests: XCTestCase {
    var daemon: InProcessServer!

    override func setUp() async throws { daemon = try InProcessServer() }
    override func tearDown() async throws { daemon.stop() }

    private func connect() throws -> (Int32, FrameWriter, FrameReader) {
        let fd = try daemon.connect()
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, FrameWriter(fd: fd), FrameReader(fd: fd))
    }

    private func next(_ reader: FrameReader) throws -> Frame? {
        try reader.next(maxPayload: { _ in 32 << 20 })
    }

    private func status(_ frame: Frame?) throws -> Status {
        let frame = try XCTUnwrap(frame)
        XCTAssertEqual(frame.header.type, .response)
        return try Status(serialized: frame.payload)
    }

    func testASlowLorisClientIsCutOffButAnIdleOneIsNot() throws {
        let strict = try InProcessServer(frameTimeout: 1)
        defer { strict.stop() }
        let idle = try strict.connect()
        defer { close(idle) }
        let loris = try strict.connect()
        defer { close(loris) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(loris, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let half: [UInt8] = [0, 0, 0, 0, 0, 0]  // six of a header's twelve bytes, then nothing
        XCTAssertEqual(half.withUnsafeBytes { send(loris, $0.baseAddress, $0.count, 0) }, 6)
        let started = Date()
        var byte: UInt8 = 0
        XCTAssertEqual(recv(loris, &byte, 1, 0), 0, "the daemon closed the stalled connection")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        // The idle connection (no frame begun) still works after the same wait.
        let writer = FrameWriter(fd: idle)
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.ping.rawValue, type: .request), payload: [])
        let answer = try FrameReader(fd: idle).next(maxPayload: { _ in 1 << 20 })
        XCTAssertEqual(answer?.header.code, 0)
    }

    func testUnknownMethodIsUnimplementedAndTheConnectionLives() throws {
        let (fd, writer, reader) = try connect()
        defer { close(fd) }
        try writer.send(FrameHeader(payloadLength: 0, callID: 7, code: 999, type: .request), payload: [])
        let answer = try XCTUnwrap(try next(reader))
        XCTAssertEqual(answer.header.callID, 7)
        XCTAssertEqual(answer.header.code, StatusCode.unimplemented.rawValue)
        XCTAssertEqual(try status(answer).message, "unknown method id 999")
        try writer.send(FrameHeader(payloadLength: 0, callID: 8, code: JobStoreMethod.ping.rawValue, type: .request), payload: [])
        XCTAssertEqual(try XCTUnwrap(try next(reader)).header.code, 0)
    }

    func testUndecodablePayloadIsInvalidArgument() throws {
        let (fd, writer, reader) = try connect()
        defer { close(fd) }
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.loadJob.rawValue, type: .request),
                        payload: [0x0a, 0x7f, 0x41])
        let answer = try XCTUnwrap(try next(reader))
        XCTAssertEqual(answer.header.code, StatusCode.invalidArgument.rawValue)
    }

    func testStrayFramesAreIgnoredAndBadTypesCloseTheConnection() throws {
        let (fd, writer, reader) = try connect()
        defer { close(fd) }
        // DATA, END and CANCEL for calls that do not exist: ignored.
        try writer.send(FrameHeader(payloadLength: 0, callID: 42, code: 0, type: .data), payload: [1, 2, 3])
        try writer.send(FrameHeader(payloadLength: 0, callID: 42, code: 0, type: .end), payload: [])
        try writer.send(FrameHeader(payloadLength: 0, callID: 43, code: 0, type: .cancel), payload: [])
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.ping.rawValue, type: .request), payload: [])
        XCTAssertEqual(try XCTUnwrap(try next(reader)).header.callID, 1)
        // A frame type no version defines: the framing is broken, the connection closes.
        var bad = FrameHeader(payloadLength: 0, callID: 2, code: 0, type: .request).bytes
        bad[10] = 77
        XCTAssertEqual(write(fd, bad, bad.count), bad.count)
        XCTAssertNil(try next(reader))
        // The daemon keeps serving others.
        let (fd2, writer2, reader2) = try connect()
        defer { close(fd2) }
        try writer2.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.ping.rawValue, type: .request), payload: [])
        XCTAssertEqual(try XCTUnwrap(try next(reader2)).header.code, 0)
    }

    func testOversizedFrameClosesTheConnection() throws {
        let (fd, _, reader) = try connect()
        defer { close(fd) }
        let header = FrameHeader(payloadLength: UInt32(WireLimits.maxDataBytes + 1), callID: 1, code: 0, type: .data).bytes
        XCTAssertEqual(write(fd, header, header.count), header.count)
        XCTAssertNil(try next(reader))
    }

    func testDescriptorOnAMethodThatTakesNoneIsRefusedAndClosed() throws {
        let (fd, writer, reader) = try connect()
        defer { close(fd) }
        var pipeFDs: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        defer { close(pipeFDs[0]) }
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.ping.rawValue, type: .request),
                        payload: [], passing: pipeFDs[1])
        close(pipeFDs[1])
        let answer = try XCTUnwrap(try next(reader))
        XCTAssertEqual(answer.header.code, StatusCode.invalidArgument.rawValue)
        // The daemon closed its copy: the pipe's write end is gone everywhere, so read sees EOF.
        var byte: UInt8 = 0
        XCTAssertEqual(read(pipeFDs[0], &byte, 1), 0)
    }

    func testTooManyCallsInFlightOnOneConnectionIsResourceExhausted() throws {
        let (fd, writer, reader) = try connect()
        defer { close(fd) }
        let locator = daemon.locator()
        try writer.send(FrameHeader(payloadLength: 0, callID: 100_000, code: JobStoreMethod.initialize.rawValue, type: .request),
                        payload: StoreRequest(locator: locator).serialized())
        XCTAssertEqual(try XCTUnwrap(try next(reader)).header.code, 0)
        // Open uploads that never end: each stays in flight.
        let request = WriteFileRequest(locator: locator).serialized()
        let rssBefore = LoadTests.residentKiB(daemon.pid)
        let count = 10_000
        // Answers are read while requests go out (both directions' buffers are finite).
        let answers = Counter()
        let readFD = fd  // nothing is buffered in `reader` past the Initialize answer
        let readerThread = Thread {
            let answerReader = FrameReader(fd: readFD)
            while answers.total < count - 512, let frame = try? answerReader.next(maxPayload: { _ in 32 << 20 }) {
                answers.add(exhausted: frame.header.code == StatusCode.resourceExhausted.rawValue)
            }
        }
        readerThread.start()
        for id in 1...count {
            try writer.send(FrameHeader(payloadLength: 0, callID: UInt32(id), code: JobStoreMethod.writeFileStream.rawValue, type: .request),
                            payload: request)
        }
        let deadline = Date().addingTimeInterval(60)
        while !readerThread.isFinished && Date() < deadline { usleep(10_000) }
        // Every upload over the limit is refused at once; the others wait for data.
        XCTAssertEqual(answers.exhausted, count - 512)
        let growth = LoadTests.residentKiB(daemon.pid) - rssBefore
        XCTAssertLessThan(growth, 64 * 1024, "10,000 calls on one connection do not grow memory (grew \(growth) KiB)")
    }

    /// A client that sends its next calls before the first is answered (pipelining, as a
    /// multiplexing client does) gets every answer, each under its own call id: the daemon runs
    /// a lone client's short calls on the connection's reader thread, and must notice this one.
    func testPipelinedCallsAreEachAnswered() throws {
        let (fd, writer, reader) = try connect()
        defer { close(fd) }
        let locator = daemon.locator()
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.initialize.rawValue, type: .request),
                        payload: StoreRequest(locator: locator).serialized())
        XCTAssertEqual(try XCTUnwrap(try next(reader)).header.code, 0)
        try writer.send(FrameHeader(payloadLength: 0, callID: 2, code: JobStoreMethod.createJob.rawValue, type: .request),
                        payload: JobBody(locator: locator, jobId: "there", body: [1]).serialized())
        XCTAssertEqual(try XCTUnwrap(try next(reader)).header.code, 0)
        let count = 200
        for id in 0..<count {  // one call at a time would wait for each answer; these do not
            try writer.send(FrameHeader(payloadLength: 0, callID: UInt32(1000 + id), code: JobStoreMethod.jobExists.rawValue, type: .request),
                            payload: JobRequest(locator: locator, jobId: id % 2 == 0 ? "there" : "absent").serialized())
        }
        var answered = Set<UInt32>()
        for _ in 0..<count {
            let frame = try XCTUnwrap(try next(reader))
            XCTAssertEqual(frame.header.code, 0)
            let id = frame.header.callID
            XCTAssertEqual(try JobExistsResponse(serialized: frame.payload).exists, id % 2 == 0, "call \(id)")
            answered.insert(id)
        }
        XCTAssertEqual(answered, Set((0..<UInt32(count)).map { 1000 + $0 }))
    }

    func testUploadWithoutEndStoresNothingWhenTheClientDies() throws {
        let locator = daemon.locator()
        let (fd, writer, reader) = try connect()
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.initialize.rawValue, type: .request),
                        payload: StoreRequest(locator: locator).serialized())
        XCTAssertEqual(try XCTUnwrap(try next(reader)).header.code, 0)
        try writer.send(FrameHeader(payloadLength: 0, callID: 2, code: JobStoreMethod.writeSharedFileStream.rawValue, type: .request),
                        payload: SharedFileRequest(locator: locator, name: "half").serialized())
        try writer.send(FrameHeader(payloadLength: 0, callID: 2, code: 0, type: .data), payload: [UInt8](repeating: 1, count: 1000))
        close(fd)
        usleep(200_000)
        let root = String(locator.dropFirst("local:".count))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/objects/half.obj"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/versions"), [])
    }
}

/// Answers counted by a reader thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var all = 0
    private var refused = 0
    func add(exhausted: Bool) { lock.lock(); all += 1; if exhausted { refused += 1 }; lock.unlock() }
    var total: Int { lock.lock(); defer { lock.unlock() }; return all }
    var exhausted: Int { lock.lock(); defer { lock.unlock() }; return refused }
}
