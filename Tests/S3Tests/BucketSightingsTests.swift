import XCTest

@testable import S3

/// What an answer of the server says about a bucket's existence, and for how long.
final class BucketSightingsTests: XCTestCase {
    func testAnAnswerOnTheBucketIsASighting() {
        let sightings = BucketSightings()
        XCTAssertFalse(sightings.seen("b", within: 10), "nothing known yet")
        sightings.record(method: "GET", bucket: "b", key: "jobs/x", status: 200)
        XCTAssertTrue(sightings.seen("b", within: 10))
        XCTAssertFalse(sightings.seen("other", within: 10))
        XCTAssertFalse(sightings.seen("b", within: 0), "a window of 0 trusts nothing")
        sightings.record(method: "GET", bucket: "c", key: "jobs/x", status: 304)
        XCTAssertTrue(sightings.seen("c", within: 10), "not modified: the object, so the bucket, is there")
    }

    func testAMissingKeyProvesNothingAndAMissingBucketEndsTheSighting() {
        let sightings = BucketSightings()
        sightings.record(method: "HEAD", bucket: "b", key: "jobs/missing", status: 404)
        XCTAssertFalse(sightings.seen("b", within: 10), "a HEAD 404 cannot tell a missing key from a missing bucket")
        sightings.record(method: "PUT", bucket: "b", key: nil, status: 200)
        XCTAssertTrue(sightings.seen("b", within: 10), "created")
        sightings.record(method: "HEAD", bucket: "b", key: "jobs/missing", status: 404)
        XCTAssertTrue(sightings.seen("b", within: 10))
        sightings.record(method: "GET", bucket: "b", key: "jobs/x", status: 404, code: "NoSuchBucket")
        XCTAssertFalse(sightings.seen("b", within: 10), "told it is gone")
        sightings.record(method: "PUT", bucket: "b", key: nil, status: 200)
        sightings.record(method: "HEAD", bucket: "b", key: nil, status: 404)
        XCTAssertFalse(sightings.seen("b", within: 10), "HeadBucket 404")
        sightings.record(method: "PUT", bucket: "b", key: nil, status: 200)
        sightings.record(method: "DELETE", bucket: "b", key: nil, status: 204)
        XCTAssertFalse(sightings.seen("b", within: 10), "deleted here")
        sightings.record(method: "PUT", bucket: "b", key: nil, status: 200)
        sightings.forgetAll()
        XCTAssertFalse(sightings.seen("b", within: 10))
    }

    func testASightingExpires() {
        let sightings = BucketSightings()
        sightings.record(method: "GET", bucket: "b", key: "k", status: 200)
        usleep(30_000)
        XCTAssertFalse(sightings.seen("b", within: 0.01))
        XCTAssertTrue(sightings.seen("b", within: 10))
    }
}
