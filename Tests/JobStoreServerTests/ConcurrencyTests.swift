import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

final class ConcurrencyTests: XCTestCase {
    /// 32 connections × 200 mixed calls against one daemon; every answer is checked.
    func testManyConnectionsManyMixedCalls() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let setup = try daemon.connect()
        let locator = daemon.locator()
        _ = try await setup.initialize(StoreRequest(locator: locator))
        setup.connection.close()

        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<32 {
                group.addTask {
                    let client = try daemon.connect()
                    defer { client.connection.close() }
                    var bad = 0
                    var files: [(String, [UInt8])] = []
                    for i in 0..<200 {
                        let job = "w\(worker)-j\(i % 20)"
                        switch i % 8 {
                        case 0, 1:
                            let body = Array("job \(worker) \(i)".utf8)
                            _ = try await client.createJob(JobBody(locator: locator, jobId: job, body: body))
                            let back = try await client.loadJob(JobRequest(locator: locator, jobId: job)).body
                            if back != body { bad += 1 }
                        case 2:
                            let bytes = pattern(1000 + i * 37, seed: UInt8(truncatingIfNeeded: worker * 7 + i))
                            let info = try await client.upload(WriteFileRequest(locator: locator, jobId: job, cleanup: true), bytes)
                            files.append((info.fileId, bytes))
                        case 3:
                            if let (id, bytes) = files.randomElement() {
                                do {
                                    if try await client.download(locator, id) != bytes { bad += 1 }
                                } catch let e as JobStoreError where e.kind == .noSuchFile {
                                    // Deleted with its job by case 6; fine.
                                }
                            }
                        case 4:
                            _ = try await client.ping()
                        case 5:
                            _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("w\(worker) \(i)".utf8)))
                        case 6:
                            _ = try await client.deleteJob(JobRequest(locator: locator, jobId: job))
                            if try await client.jobExists(JobRequest(locator: locator, jobId: job)).exists { bad += 1 }
                        default:
                            let name = "shared-\(worker)"
                            try await client.writeShared(locator, name, Array(name.utf8))
                            if try await client.readShared(locator, name) != Array(name.utf8) { bad += 1 }
                        }
                    }
                    return bad
                }
            }
            return try await group.reduce(0, +)
        }
        XCTAssertEqual(failures, 0)
        let check = try daemon.connect()
        let stats = try await check.stats()
        let calls = stats.methods.reduce(UInt64(0)) { $0 + $1.calls }
        XCTAssertGreaterThanOrEqual(calls, 32 * 200)
        // The only errors: reads of files deleted with their job by another call (NO_SUCH_FILE).
        XCTAssertEqual(stats.methods.filter { $0.errors > 0 }.map(\.method).filter { $0 != "ReadFileStream" }, [])
        var logs = 0
        var token = ""
        repeat {
            let page = try await check.readLogs(ReadLogsRequest(locator: locator, readAll: true, pageToken: token))
            logs += page.messages.count
            token = page.nextPageToken
        } while !token.isEmpty
        XCTAssertEqual(logs, 32 * 25)
        check.connection.close()
    }

    /// Many calls in flight on one connection at once, answered out of order.
    func testOneConnectionManyCallsInFlight() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let client = try daemon.connect()
        let locator = daemon.locator()
        _ = try await client.initialize(StoreRequest(locator: locator))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let body = pattern(i * 100, seed: UInt8(i % 256))
                    _ = try await client.createJob(JobBody(locator: locator, jobId: "j\(i)", body: body))
                    let back = try await client.loadJob(JobRequest(locator: locator, jobId: "j\(i)")).body
                    XCTAssertEqual(back, body)
                }
            }
            try await group.waitForAll()
        }
        client.connection.close()
    }

    /// A call made while an upload of the same client is still open (Toil pickles a promise,
    /// which writes a file, inside another file's write) gets a thread of its own and is
    /// answered; it used to wait behind the open upload when both arrived back to back.
    func testACallInsideAnOpenUploadIsAnswered() async throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        let locator = daemon.locator()
        _ = try await client.initialize(StoreRequest(locator: locator))
        for round in 0..<300 {
            let finished = Flag()
            let call = Task {
                _ = try await client.writeFileStream(WriteFileRequest(locator: locator)) { upload in
                    try await upload.write([UInt8(round % 256)])
                    _ = try await client.assignFileId(WriteFileRequest(locator: locator))
                }
                finished.set()
            }
            let deadline = Date().addingTimeInterval(10)
            while !finished.isSet && Date() < deadline { try await Task.sleep(nanoseconds: 1_000_000) }
            guard finished.isSet else {
                XCTFail("round \(round): the inner call was not answered within 10 s")
                client.connection.close()  // unblocks the stuck call
                _ = await call.result
                return
            }
            try await call.value
        }
    }
}

/// A flag set by one task and polled by another.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
