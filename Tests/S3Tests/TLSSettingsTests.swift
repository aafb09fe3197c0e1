import S3
import XCTest

/// Where the CA bundle comes from, in botocore's precedence: the flag, AWS_CA_BUNDLE, then the
/// profile's `ca_bundle` in the shared config file.
final class TLSSettingsTests: XCTestCase {
    let config = """
        [default]
        ca_bundle = /etc/default-ca.pem
        [profile work]
        region = us-east-1
        ca_bundle = /etc/work-ca.pem
        """

    func read(_ path: String) -> String? { path == "/home/u/.aws/config" || path == "/custom/config" ? config : nil }

    func testPrecedence() {
        let env = ["HOME": "/home/u", "AWS_CA_BUNDLE": "/env-ca.pem"]
        XCTAssertEqual(TLSSettings.resolve(caBundle: "/flag.pem", noVerify: false, environment: env, readFile: read).caBundle, "/flag.pem")
        XCTAssertEqual(TLSSettings.resolve(caBundle: nil, noVerify: false, environment: env, readFile: read).caBundle, "/env-ca.pem")
        let fromFile = TLSSettings.resolve(caBundle: nil, noVerify: false, environment: ["HOME": "/home/u"], readFile: read)
        XCTAssertEqual(fromFile.caBundle, "/etc/default-ca.pem")
        XCTAssertTrue(fromFile.caBundleSource.contains("profile default"), fromFile.caBundleSource)
        let profile = TLSSettings.resolve(caBundle: nil, noVerify: false,
                                          environment: ["HOME": "/x", "AWS_CONFIG_FILE": "/custom/config", "AWS_PROFILE": "work"], readFile: read)
        XCTAssertEqual(profile.caBundle, "/etc/work-ca.pem")
        let none = TLSSettings.resolve(caBundle: nil, noVerify: false, environment: ["HOME": "/nowhere"], readFile: read)
        XCTAssertNil(none.caBundle, "the system's store")
        XCTAssertTrue(none.verify)
        XCTAssertFalse(TLSSettings.resolve(caBundle: nil, noVerify: true, environment: [:], readFile: read).verify)
    }
}
