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
