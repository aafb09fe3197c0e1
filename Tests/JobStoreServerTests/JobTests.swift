import JobStoreClient
import JobStoreWire
import XCTest

class JobTests: StoreTestCase {
    func testJobRoundTrip() async throws {
        let id = try await client.assignJobId(AssignJobIdRequest(locator: locator, jobName: "align")).jobId
        XCTAssertEqual(id.count, 36)
        let awaited1 = try await client.jobExists(JobRequest(locator: locator, jobId: id)).exists
        XCTAssertFalse(awaited1)
        let body = pattern(10_000)
        _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: body))
        let awaited2 = try await client.jobExists(JobRequest(locator: locator, jobId: id)).exists
        XCTAssertTrue(awaited2)
        let awaited3 = try await client.loadJob(JobRequest(locator: locator, jobId: id)).body
        XCTAssertEqual(awaited3, body)
        _ = try await client.updateJob(JobBody(locator: locator, jobId: id, body: [9]))
        let awaited4 = try await client.loadJob(JobRequest(locator: locator, jobId: id)).body
        XCTAssertEqual(awaited4, [9])
        _ = try await client.updateJob(JobBody(locator: locator, jobId: id, body: []))
        let awaited5 = try await client.loadJob(JobRequest(locator: locator, jobId: id)).body
        XCTAssertEqual(awaited5, [])
        _ = try await client.deleteJob(JobRequest(locator: locator, jobId: id))
        let awaited6 = try await client.jobExists(JobRequest(locator: locator, jobId: id)).exists
        XCTAssertFalse(awaited6)
        _ = try await client.deleteJob(JobRequest(locator: locator, jobId: id))  // idempotent
    }

    func testUnknownJobIsNoSuchJob() async throws {
        await assertFails(.notFound, kind: .noSuchJob, message: "The job 'nope' does not exist.") {
            try await client.loadJob(JobRequest(locator: locator, jobId: "nope"))
        }
    }

    func testHostileJobIdsAreRejected() async throws {
        for id in ["", "../x", "a/b", "a.b", ".", "..", "a\u{0}b", "a\nb", String(repeating: "x", count: 300)] {
            await assertFails(.invalidArgument, kind: .invalidName) {
                try await client.createJob(JobBody(locator: locator, jobId: id, body: [1]))
            }
        }
        XCTAssertEqual(try storedKeys(), [], "nothing was written anywhere")
    }

    func testListJobsPagesThroughEveryJob() async throws {
        var ids = Set<String>()
        for i in 0..<25 {
            let id = "job-\(i)"
            ids.insert(id)
            _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: Array("body \(i)".utf8)))
        }
        var seen: [String: [UInt8]] = [:]
        var token = ""
        var pages = 0
        repeat {
            let page = try await client.listJobs(ListJobsRequest(locator: locator, pageToken: token, pageSize: 10, includeBodies: true))
            for job in page.jobs { seen[job.jobId] = job.body }
            token = page.nextPageToken
            pages += 1
        } while !token.isEmpty
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(Set(seen.keys), ids)
        XCTAssertEqual(seen["job-7"], Array("body 7".utf8))
        let bare = try await client.listJobs(ListJobsRequest(locator: locator))
        XCTAssertEqual(bare.jobs.count, 25)
        XCTAssertTrue(bare.jobs.allSatisfy { $0.body.isEmpty && $0.size > 0 })
    }

    func testDeleteJobRemovesItsCleanupFilesOnly() async throws {
        _ = try await client.createJob(JobBody(locator: locator, jobId: "parent", body: [1]))
        _ = try await client.createJob(JobBody(locator: locator, jobId: "parentx", body: [1]))
        let owned = try await client.upload(WriteFileRequest(locator: locator, jobId: "parent", cleanup: true, basename: "a.txt"), [1, 2])
        let kept = try await client.upload(WriteFileRequest(locator: locator, jobId: "parent", cleanup: false, basename: "b.txt"), [3])
        let hinted = try await client.upload(WriteFileRequest(locator: locator, jobId: "parent", cleanup: true, basename: "c.txt",
                                                              hints: ["wf", "task"]), [4])
        let empty = try await client.getEmptyFileStoreId(WriteFileRequest(locator: locator, jobId: "parent", cleanup: true))
        let other = try await client.upload(WriteFileRequest(locator: locator, jobId: "parentx", cleanup: true), [5])
        let associated = try await client.upload(WriteFileRequest(locator: locator), [6])
        _ = try await client.associateJobWithFile(AssociateJobWithFileRequest(locator: locator, jobId: "parent", fileId: associated.fileId))

        _ = try await client.deleteJob(JobRequest(locator: locator, jobId: "parent"))
        for gone in [owned, hinted, empty, associated] {
            let awaited7 = try await client.fileExists(FileRequest(locator: locator, fileId: gone.fileId)).exists
            XCTAssertFalse(awaited7, gone.fileId)
        }
        let awaited8 = try await client.fileExists(FileRequest(locator: locator, fileId: kept.fileId)).exists
        XCTAssertTrue(awaited8)
        // "parentx" shares a prefix with "parent": its files are not touched.
        let awaited9 = try await client.fileExists(FileRequest(locator: locator, fileId: other.fileId)).exists
        XCTAssertTrue(awaited9)
        let awaited10 = try await client.jobExists(JobRequest(locator: locator, jobId: "parentx")).exists
        XCTAssertTrue(awaited10)
    }
}
