import Foundation
import JobStoreClient
import JobStoreServer
import JobStoreWire
import XCTest

/// The server's dispatch and errors through the generated Swift client, in this process: the
/// listener seam (`SocketServer.admit`) takes one end of a socketpair, the client the other.
final class InProcessServerTests: XCTestCase {
    var daemon: InProcessServer!

    override func setUp() async throws { daemon = try InProcessServer() }
    override func tearDown() async throws { daemon.stop() }

    func testCallsAreDispatchedAndCountedWithoutAChildProcess() async throws {
        let client = try daemon.client()
        let locator = daemon.locator()
        _ = try await client.ping()
        _ = try await client.initialize(StoreRequest(locator: locator))
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j1", body: [1, 2, 3]))
        let loaded = try await client.loadJob(JobRequest(locator: locator, jobId: "j1"))
        XCTAssertEqual(loaded.body, [1, 2, 3])
        let exists = try await client.jobExists(JobRequest(locator: locator, jobId: "absent")).exists
        XCTAssertFalse(exists)
        let stats = try await client.stats()
        XCTAssertEqual(stats.connections, 1)
        XCTAssertEqual(stats.methods.first { $0.method == "LoadJob" }?.calls, 1)
        XCTAssertEqual(stats.storesOpen, 1)
    }

    func testAFailureReachesTheClientWithItsStatusAndToilKind() async throws {
        let client = try daemon.client()
        let locator = daemon.locator()
        try await expectFailure(.notFound, .noSuchJobStore, "a store never initialized has no jobs") {
            _ = try await client.loadJob(JobRequest(locator: locator, jobId: "j1"))
        }
        _ = try await client.initialize(StoreRequest(locator: locator))
        try await expectFailure(.notFound, .noSuchJob, "no such job") {
            _ = try await client.loadJob(JobRequest(locator: locator, jobId: "j1"))
        }
        try await expectFailure(.invalidArgument, .invalidLocator, "a locator no store type has") {
            _ = try await client.initialize(StoreRequest(locator: "nonsense:locator"))
        }
        _ = try await client.ping()  // the connection outlives every failure
    }

    private func expectFailure(_ code: StatusCode, _ kind: ErrorKind, _ why: String,
                               file: StaticString = #filePath, line: UInt = #line, _ call: () async throws -> Void) async throws {
        do {
            try await call()
            XCTFail("expected \(code.name): \(why)", file: file, line: line)
        } catch let error as JobStoreError {
            XCTAssertEqual(error.code, code, why, file: file, line: line)
            XCTAssertEqual(error.kind, kind, why, file: file, line: line)
        }
    }

    func testManyClientsOnOneServerEachGetTheirOwnAnswers() async throws {
        let locator = daemon.locator()
        let first = try daemon.client()
        _ = try await first.initialize(StoreRequest(locator: locator))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<8 {
                let client = try daemon.client()
                group.addTask {
                    for k in 0..<25 {
                        let id = "job-\(n)-\(k)"
                        _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: Array(id.utf8)))
                        let body = try await client.loadJob(JobRequest(locator: locator, jobId: id)).body
                        XCTAssertEqual(body, Array(id.utf8))
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = try await first.stats().connectionsTotal
        XCTAssertEqual(total, 9)
    }

    /// A client that sends pooled calls and hangs up at once: their answers must go nowhere,
    /// never to the socket that next gets the closed one's descriptor number. (The last call to
    /// finish closed the socket while another was between forgetting its id and answering;
    /// jobstore-fuzz met a stranger's answer on a fresh connection.)
    func testALateAnswerNeverReachesTheNextConnection() throws {
        // Four clients at once, so that one's new socket takes another's freed number too.
        let strangers = Counter()
        let server: InProcessServer = daemon
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<2500 {
                guard let hasty = try? server.connect() else { continue }
                for id in UInt32(1)...4 {  // pooled calls that end together, after the hang-up
                    try? FrameWriter(fd: hasty).send(FrameHeader(payloadLength: 0, callID: id, code: JobStoreMethod.listJobs.rawValue,
                                                                 type: .request), payload: [0x0a, 0x7f, 0x41])
                }
                close(hasty)
                guard let next = try? server.connect() else { continue }
                defer { close(next) }
                var timeout = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(next, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                try? FrameWriter(fd: next).send(FrameHeader(payloadLength: 0, callID: 7, code: JobStoreMethod.ping.rawValue,
                                                            type: .request), payload: [])
                let answer = try? FrameReader(fd: next).next(maxPayload: { _ in 1 << 20 })
                strangers.add(exhausted: answer?.header.callID != 7)
            }
        }
        XCTAssertEqual(strangers.total, 10_000)
        XCTAssertEqual(strangers.exhausted, 0, "answers to another connection's call, or no answer to Ping")
    }

    func testAServerThatStoppedAdmitsNothingAndItsClientsFailUnavailable() async throws {
        let client = try daemon.client()
        _ = try await client.ping()
        XCTAssertEqual(daemon.server.shutdown(deadline: 5), 0, "an idle connection closes at once")
        do {
            _ = try await client.ping()
            XCTFail("the server is gone")
        } catch let error as JobStoreError {
            XCTAssertEqual(error.code, .unavailable, "\(error)")
        }
        // A socket offered after the stop is closed: its peer reads end-of-file.
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends), 0)
        defer { close(ends[1]) }
        XCTAssertFalse(daemon.server.admit(ends[0]))
        var byte: UInt8 = 0
        XCTAssertEqual(read(ends[1], &byte, 1), 0)
    }
}
