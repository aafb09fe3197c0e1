import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// S3 requests a node need not send again: every Toil worker process resumes the store, and at
/// 20 ms a request each one is latency a worker waits for. Against the real S3 server, counted
/// by the daemon's Stats; what another node does must still be seen.
final class RequestCountTests: XCTestCase {
    private func newLocator(_ what: String) -> String {
        "aws:us-east-1:jobstore-\(what)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    private func sent(_ client: JobStoreClient, _ operation: String) async throws -> UInt64 {
        try await client.stats().backendRequests.first { $0.operation == operation }?.requests ?? 0
    }

    func testWorkersResumingAStoreAskNothingTheNodeWasJustTold() async throws {
        let daemon = try DaemonProcess.withS3()
        defer { daemon.stop() }
        let locator = newLocator("resume")
        let leader = try daemon.connect()
        defer { leader.connection.close() }
        _ = try await leader.initialize(StoreRequest(locator: locator))
        for _ in 0..<8 {  // eight worker processes, each its own connection and resume
            let worker = try daemon.connect()
            _ = try await worker.resume(StoreRequest(locator: locator))
            worker.connection.close()
        }
        let awaitedSweeps = try await sent(leader, "ListMultipartUploads")
        XCTAssertEqual(awaitedSweeps, 1, "one sweep of interrupted uploads per store and interval")
        let awaitedHeads = try await sent(leader, "HeadBucket")
        XCTAssertEqual(awaitedHeads, 1, "initialize asks whether the bucket exists; the resumes right after it need not")
        // A HEAD that finds no key need not ask about the bucket it has just seen.
        let exists = try await leader.jobExists(JobRequest(locator: locator, jobId: "no-such-job")).exists
        XCTAssertFalse(exists)
        let awaitedHeadsAfter = try await sent(leader, "HeadBucket")
        XCTAssertEqual(awaitedHeadsAfter, 1)
        _ = try await leader.destroy(StoreRequest(locator: locator))
        await assertFails(.notFound, kind: .noSuchJobStore) { try await leader.resume(StoreRequest(locator: locator)) }
    }

    /// Another node destroys the store: this node's workers meet it at their next call, and a
    /// resume after that asks S3 again.
    func testAStoreDestroyedByAnotherNodeIsSeen() async throws {
        let here = try DaemonProcess.withS3()
        defer { here.stop() }
        let there = try DaemonProcess.withS3()
        defer { there.stop() }
        let locator = newLocator("gone")
        let local = try here.connect()
        defer { local.connection.close() }
        let remote = try there.connect()
        defer { remote.connection.close() }
        _ = try await local.initialize(StoreRequest(locator: locator))
        _ = try await local.createJob(JobBody(locator: locator, jobId: "j", body: [1, 2, 3]))
        _ = try await remote.resume(StoreRequest(locator: locator))
        _ = try await remote.destroy(StoreRequest(locator: locator))
        // The resume may be answered from what this node saw a moment ago; the call after it
        // goes to S3 and finds the store gone.
        _ = try? await local.resume(StoreRequest(locator: locator))
        await assertFails(.notFound, kind: .noSuchJobStore) { try await local.loadJob(JobRequest(locator: locator, jobId: "j")) }
        await assertFails(.notFound, kind: .noSuchJobStore) { try await local.resume(StoreRequest(locator: locator)) }
        // NoSuchBucket ended the sighting: a HEAD that finds nothing asks about the bucket again.
        await assertFails(.notFound, kind: .noSuchJobStore) { try await local.jobExists(JobRequest(locator: locator, jobId: "j")) }
    }

    /// A poll of the logs costs what Toil's does: the marker, a listing, the new logs, and the
    /// marker (and the daemon's window of logs from slow clocks) written back when there were
    /// any; the window is not read back by the daemon that wrote it; an idle poll only lists.
    func testAPollOfTheLogsReadsOneMarker() async throws {
        let daemon = try DaemonProcess.withS3()
        defer { daemon.stop() }
        let locator = newLocator("logs")
        let client = try daemon.connect()
        defer { client.connection.close() }
        _ = try await client.initialize(StoreRequest(locator: locator))
        // Forty logs: a window too large for the marker's metadata, so it goes to its own object,
        // which this daemon, having written it, need not read back.
        for i in 0..<40 { _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("log \(i)".utf8))) }
        let first = try await client.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(first.count, 40)
        let gets = try await sent(client, "GetObject"), puts = try await sent(client, "PutObject")
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("two".utf8)))
        let awaited = try await client.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(awaited, [Array("two".utf8)])
        let getsAfter = try await sent(client, "GetObject"), putsAfter = try await sent(client, "PutObject")
        XCTAssertEqual(getsAfter - gets, 2, "the marker and the new log")
        XCTAssertEqual(putsAfter - puts, 3, "the new log, the window's object and the marker")
        let idle = try await sent(client, "GetObject"), listings = try await sent(client, "ListObjectsV2")
        let none = try await client.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(none, [])
        let idleAfter = try await sent(client, "GetObject"), putsIdle = try await sent(client, "PutObject")
        XCTAssertEqual(idleAfter - idle, 0, "a poll with nothing new against the marker this daemon saw reads nothing")
        let listingsAfter = try await sent(client, "ListObjectsV2")
        XCTAssertEqual(listingsAfter - listings, 1, "it lists the logs once")
        XCTAssertEqual(putsIdle - putsAfter, 0, "and writes nothing")
        // Another node's reader moves the marker over a new log: the listing shows it unread
        // against what this daemon saw, so the next poll reads the marker and delivers nothing.
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("three".utf8)))
        let other = try DaemonProcess.withS3()
        defer { other.stop() }
        let elsewhere = try other.connect()
        defer { elsewhere.connection.close() }
        let there = try await elsewhere.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(there, [Array("three".utf8)])
        let here = try await client.readLogs(ReadLogsRequest(locator: locator)).messages
        XCTAssertEqual(here, [], "read once, on the other node")
        _ = try await client.destroy(StoreRequest(locator: locator))
    }
}
