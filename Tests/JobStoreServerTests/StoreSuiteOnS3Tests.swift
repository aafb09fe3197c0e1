// The spine's job-store suite again, every test of it, on aws: stores on SeaweedFS with 5 MiB
// parts (so that a few MiB make a multipart object). The subclasses inherit the test methods;
// XCTest on Linux discovers a class (and then its inherited tests) by a test it declares, hence
// the one check each declares: that it really runs on an S3 bucket.
import JobStoreWire
import XCTest

extension StoreTestCase {
    func assertOnS3() async throws {
        XCTAssertTrue(locator.hasPrefix("aws:us-east-1:"), locator)
        let exists = try await client.storeExists(StoreRequest(locator: locator)).exists
        XCTAssertTrue(exists)
        XCTAssertFalse(isLocal)
        _ = try storedKeys()  // the bucket can be listed directly
    }
}

final class FileTestsOnS3: FileTests {
    override class var backend: TestBackend { .seaweedFS }
    func testTheStoreIsAnS3Bucket() async throws { try await assertOnS3() }
}

final class JobTestsOnS3: JobTests {
    override class var backend: TestBackend { .seaweedFS }
    func testTheStoreIsAnS3Bucket() async throws { try await assertOnS3() }
}

final class SharedAndLogTestsOnS3: SharedAndLogTests {
    override class var backend: TestBackend { .seaweedFS }
    func testTheStoreIsAnS3Bucket() async throws { try await assertOnS3() }
}
