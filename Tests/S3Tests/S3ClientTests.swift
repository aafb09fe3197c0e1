import Foundation
import S3
import XCTest

/// Against the real SeaweedFS that `tools/dev-s3 start` runs (CI starts it).
final class S3ClientTests: XCTestCase {
    static let session = CurlSession()

    func client(secret: String? = nil) throws -> S3Client {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = env["JOBSTORE_TEST_S3_ENDPOINT"], let key = env["JOBSTORE_TEST_S3_ACCESS_KEY"],
              let realSecret = env["JOBSTORE_TEST_S3_SECRET_KEY"] else {
            XCTFail("JOBSTORE_TEST_S3_* not set: run eval \"$(tools/dev-s3 start)\" first")
            throw XCTSkip("no S3 server")
        }
        let credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret ?? realSecret)
        return S3Client(endpoint: .init(url: URL(string: endpoint)!, region: "us-east-1"), session: Self.session,
                        credentials: { credentials })
    }

    func testSignedRoundTripOnSeaweedFS() throws {
        let s3 = try client()
        let bucket = "jobstore-s3test-\(UUID().uuidString.prefix(8).lowercased())"
        try s3.send("PUT", bucket: bucket)
        defer {
            if let listing = try? s3.send("GET", bucket: bucket, query: [("list-type", "2")]) {
                let xml = String(decoding: listing.body, as: UTF8.self)
                for part in xml.components(separatedBy: "<Key>").dropFirst() {
                    if let key = part.components(separatedBy: "</Key>").first { _ = try? s3.send("DELETE", bucket: bucket, key: key) }
                }
            }
            _ = try? s3.send("DELETE", bucket: bucket)
        }
        let body = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        try s3.send("PUT", bucket: bucket, key: "jobs/a b+c", headers: [("x-amz-meta-jobstore-sha256", "x")], body: body)
        let got = try s3.send("GET", bucket: bucket, key: "jobs/a b+c")
        XCTAssertEqual(got.body, body)
        XCTAssertEqual(got.headers["x-amz-meta-jobstore-sha256"], "x")
        let ranged = try s3.send("GET", bucket: bucket, key: "jobs/a b+c", headers: [("Range", "bytes=10-19")])
        XCTAssertEqual(ranged.body, Array(body[10..<20]))
        let head = try s3.send("HEAD", bucket: bucket, key: "jobs/a b+c")
        XCTAssertEqual(head.headers["content-length"], "100000")
        XCTAssertThrowsError(try s3.send("PUT", bucket: bucket, key: "jobs/a b+c", headers: [("If-None-Match", "*")], body: [1])) {
            XCTAssertEqual(($0 as? S3Client.S3Error)?.status, 412)
        }
        XCTAssertThrowsError(try s3.send("GET", bucket: bucket, key: "missing")) {
            XCTAssertEqual(($0 as? S3Client.S3Error)?.code, "NoSuchKey")
        }
        // Many calls in parallel share the one session.
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            do { try s3.send("PUT", bucket: bucket, key: "p/\(i)", body: [UInt8(i)]) } catch { XCTFail("\(error)") }
        }
        let listing = String(decoding: try s3.send("GET", bucket: bucket, query: [("list-type", "2"), ("prefix", "p/")]).body, as: UTF8.self)
        XCTAssertEqual(listing.components(separatedBy: "<Key>").count - 1, 32)
    }

    /// Virtual-host addressing (`bucket.host`), as AWS prefers: SeaweedFS runs with
    /// -s3.domainName=s3.localhost, and libcurl resolves *.localhost to the loopback itself.
    func testVirtualHostAddressing() throws {
        let env = ProcessInfo.processInfo.environment
        let port = try XCTUnwrap(URL(string: try XCTUnwrap(env["JOBSTORE_TEST_S3_ENDPOINT"]))?.port)
        let credentials = AWSCredentials(accessKeyID: env["JOBSTORE_TEST_S3_ACCESS_KEY"]!, secretAccessKey: env["JOBSTORE_TEST_S3_SECRET_KEY"]!)
        let s3 = S3Client(endpoint: .init(url: URL(string: "http://s3.localhost:\(port)")!, region: "us-east-1", pathStyle: false),
                          session: Self.session, credentials: { credentials })
        let bucket = "jobstore-vhost-\(UUID().uuidString.prefix(8).lowercased())"
        try s3.send("PUT", bucket: bucket)
        defer {
            _ = try? s3.send("DELETE", bucket: bucket, key: "k")
            _ = try? s3.send("DELETE", bucket: bucket)
        }
        try s3.send("PUT", bucket: bucket, key: "k", body: [1, 2, 3])
        let got = try s3.send("GET", bucket: bucket, key: "k")
        XCTAssertEqual(got.body, [1, 2, 3])
        let listing = String(decoding: try s3.send("GET", bucket: bucket, query: [("list-type", "2")]).body, as: UTF8.self)
        XCTAssertTrue(listing.contains("<Key>k</Key>"), listing)
        let url = try s3.presignedURL(bucket: bucket, key: "k", expiresIn: 60)
        XCTAssertTrue(url.hasPrefix("http://\(bucket).s3.localhost:\(port)/k?"), url)
        XCTAssertEqual(try Self.session.perform(CurlSession.Request(method: "GET", url: url)).body, [1, 2, 3])
    }

    func testAWrongSecretIsRefused() throws {
        let s3 = try client(secret: "wrong")
        XCTAssertThrowsError(try s3.send("GET", bucket: "anything", query: [("list-type", "2")])) {
            XCTAssertEqual(($0 as? S3Client.S3Error)?.code, "SignatureDoesNotMatch", "\($0)")
            XCTAssertEqual(($0 as? S3Client.S3Error)?.attempts, 2, "signed afresh and sent once more, then given up")
        }
    }

    func testARefusedConnectionIsATransportError() throws {
        let credentials = AWSCredentials(accessKeyID: "a", secretAccessKey: "b")
        let s3 = S3Client(endpoint: .init(url: URL(string: "http://127.0.0.1:9")!, region: "us-east-1"), session: Self.session,
                          credentials: { credentials })
        XCTAssertThrowsError(try s3.send("GET", bucket: "b")) { XCTAssertTrue($0 is CurlSession.TransportError, "\($0)") }
    }
}
