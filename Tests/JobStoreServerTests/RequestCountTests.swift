import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// S3 requests a node need not send again: every Toil worker process resumes the store, and at
/// 20 ms a request each one is latency a worker waits for.
final class RequestCountTests: XCTestCase {
    func testWorkersResumingAStoreSweepInterruptedUploadsOnce() async throws {
        let daemon = try DaemonProcess.withS3()
        defer { daemon.stop() }
        let locator = "aws:us-east-1:jobstore-resume-\(UUID().uuidString.prefix(8).lowercased())"
        let leader = try daemon.connect()
        defer { leader.connection.close() }
        _ = try await leader.initialize(StoreRequest(locator: locator))
        for _ in 0..<8 {  // eight worker processes, each its own connection and resume
            let worker = try daemon.connect()
            _ = try await worker.resume(StoreRequest(locator: locator))
            worker.connection.close()
        }
        let stats = try await leader.stats()
        func sent(_ operation: String) -> UInt64 { stats.backendRequests.first { $0.operation == operation }?.requests ?? 0 }
        XCTAssertEqual(sent("ListMultipartUploads"), 1, "one sweep of interrupted uploads per store and interval")
        XCTAssertEqual(sent("HeadBucket"), 9, "each resume still checks the store exists (another node may have destroyed it)")
        _ = try await leader.destroy(StoreRequest(locator: locator))
        await assertFails(.notFound, kind: .noSuchJobStore) { try await leader.resume(StoreRequest(locator: locator)) }
    }
}
