import ArgumentParser
import JobStoreDaemon
import XCTest

/// Each check of `DaemonConfiguration`, in-process: the value refused and the sentence saying why.
final class DaemonConfigurationValidationTests: XCTestCase {
    private func configuration(_ arguments: [String], environment: [String: String] = [:]) throws -> DaemonConfiguration {
        try DaemonConfiguration(DaemonOptions.parse(arguments), environment: environment)
    }

    private func assertInvalid(_ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try configuration(arguments), file: file, line: line) { error in
            XCTAssertEqual((error as? DaemonConfiguration.Invalid)?.description, message, "\(error)", file: file, line: line)
        }
    }

    func testTheDefaultsAreValid() throws {
        let c = try configuration([], environment: ["XDG_CACHE_HOME": "/cache"])
        XCTAssertEqual(c.logLevel, .info)
        XCTAssertEqual(c.logFormat, .text)
        XCTAssertNil(c.metricsAddress)
        XCTAssertNil(c.endpoint)
        XCTAssertFalse(c.pathStyle, "virtual-host addressing on AWS")
        XCTAssertEqual(c.partSize, 50 << 20)
        XCTAssertEqual(c.cacheDirectory, "/cache/jobstored")
        XCTAssertEqual(c.cache?.capacity, 10 << 30)
        XCTAssertEqual(c.defaultRegion, "us-east-1")
        XCTAssertTrue(c.durable)
    }

    func testLoggingChecks() {
        assertInvalid(["--log-level", "loud"], "unknown log level loud")
        assertInvalid(["--log-format", "xml"], "--log-format must be text or json, not xml")
    }

    func testTheMetricsAddressIsHostAndPort() throws {
        assertInvalid(["--metrics", "nowhere"], "--metrics must be HOST:PORT such as 127.0.0.1:9464, not nowhere")
        XCTAssertEqual(try configuration(["--metrics", ":9464"]).metricsAddress, .init(host: "127.0.0.1", port: 9464))
    }

    func testLocalRootsAreAbsoluteAndCheckedByWholeComponents() throws {
        assertInvalid(["--local-root", "relative/dir"], "--local-root must be an absolute path, not relative/dir")
        let c = try configuration(["--local-root", "/scratch/"])
        XCTAssertEqual(c.localRoots, ["/scratch"])
        XCTAssertNoThrow(try c.checkLocalRoot("/scratch/store"))
        XCTAssertThrowsError(try c.checkLocalRoot("/scratchy/store"), "a prefix is not a parent")
        XCTAssertNoThrow(try configuration([]).checkLocalRoot("/anywhere"), "no roots: anywhere")
    }

    func testDeadlinesAreSeconds() {
        assertInvalid(["--shutdown-deadline=-1"], "--shutdown-deadline must be a number of seconds, 0 or more")
        assertInvalid(["--frame-timeout", "0"], "--frame-timeout must be a positive number of seconds")
        assertInvalid(["--url-expiry", "0"], "--url-expiry must be between 1 and 604800 seconds (7 days), not 0")
        assertInvalid(["--url-expiry", "604801"], "--url-expiry must be between 1 and 604800 seconds (7 days), not 604801")
    }

    func testTheEndpointIsAnHTTPURLFromTheFlagOrAWSVariables() throws {
        assertInvalid(["--endpoint", "ftp://host"], "invalid S3 endpoint ftp://host")
        let c = try configuration([], environment: ["AWS_ENDPOINT_URL": "https://other", "AWS_ENDPOINT_URL_S3": "https://s3.example.org"])
        XCTAssertEqual(c.endpoint?.absoluteString, "https://s3.example.org")
        XCTAssertTrue(c.pathStyle, "path addressing for an explicit endpoint")
        XCTAssertFalse(try configuration(["--endpoint", "http://h", "--s3-addressing", "virtual"]).pathStyle)
    }

    func testS3SessionChecks() {
        assertInvalid(["--part-size", "4MiB"], "--part-size must be between 5MiB and 5GiB, not 4MiB")
        assertInvalid(["--part-size", "6GiB"], "--part-size must be between 5MiB and 5GiB, not 6GiB")
        assertInvalid(["--transfer-buffers", "0"], "--transfer-buffers and --part-concurrency must be at least 1")
        assertInvalid(["--part-concurrency", "0"], "--transfer-buffers and --part-concurrency must be at least 1")
        assertInvalid(["--s3-addressing", "dns"], "--s3-addressing must be auto, path or virtual, not dns")
        assertInvalid(["--s3-max-connections", "0"], "--s3-max-connections must be at least 1")
        assertInvalid(["--s3-stall-seconds", "0"], "--s3-stall-seconds must be at least 1")
        assertInvalid(["--s3-outage-tolerance=-1"], "--s3-outage-tolerance must be a number of seconds, 0 or more")
        assertInvalid(["--s3-outage-tolerance", "inf"], "--s3-outage-tolerance must be a number of seconds, 0 or more")
    }

    func testCacheChecks() throws {
        assertInvalid(["--cache-size", "0"], "--cache-size must be a positive size such as 10GiB, not 0")
        assertInvalid(["--cache-size", "lots"], "--cache-size must be a positive size such as 10GiB, not lots")
        assertInvalid(["--cache-min-free", "100"], "--cache-min-free must be a percentage below 100")
        assertInvalid(["--cache-trust-seconds=-1"], "--cache-trust-seconds must not be negative")
        XCTAssertNil(try configuration(["--no-cache"]).cache)
        XCTAssertEqual(try configuration(["--cache-size", "512K"]).cache?.capacity, 512 << 10)
    }

    func testTheCABundleComesFromTheFlagThenTheEnvironmentAndIsNotReadHere() throws {
        let c = try configuration([], environment: ["AWS_CA_BUNDLE": "/no/such/ca.pem"])
        XCTAssertEqual(c.tls.caBundle, "/no/such/ca.pem", "a file met at start, not a value refused here")
        XCTAssertEqual(try configuration(["--ca-bundle", "/mine.pem"], environment: ["AWS_CA_BUNDLE": "/env.pem"]).tls.caBundle, "/mine.pem")
        XCTAssertFalse(try configuration(["--no-verify-tls"]).tls.verify)
    }
}
