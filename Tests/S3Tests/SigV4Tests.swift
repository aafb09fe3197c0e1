@testable import S3
import XCTest

/// Vectors from AWS's SigV4 test suite (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
/// us-east-1, service "service") and S3's documented examples; botocore agrees with each.
final class SigV4Tests: XCTestCase {
    let suite = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    let suiteScope = SigV4.Scope(region: "us-east-1", service: "service")
    let suiteDate = AMZDate(timestamp: "20150830T123600Z")
    let s3Docs = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    private func authorization(_ headers: [(String, String)]) -> String {
        headers.first { $0.0 == "authorization" }?.1 ?? ""
    }

    func testGetVanilla() {
        let request = SigV4.Request(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com")],
                                    payloadHash: SigV4.emptyPayloadHash)
        XCTAssertEqual(authorization(SigV4.sign(request, credentials: suite, scope: suiteScope, date: suiteDate)),
                       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
                       + "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    func testPostXWWWFormURLEncoded() {
        let body = Array("Param1=value1".utf8)
        let request = SigV4.Request(method: "POST", path: "/",
                                    headers: [("Host", "example.amazonaws.com"), ("Content-Type", "application/x-www-form-urlencoded")],
                                    payloadHash: Crypto.sha256Hex(body))
        XCTAssertTrue(authorization(SigV4.sign(request, credentials: suite, scope: suiteScope, date: suiteDate))
            .hasSuffix("SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"))
    }

    func testGetVanillaQueryOrderKeyCase() {
        let request = SigV4.Request(method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
                                    headers: [("Host", "example.amazonaws.com")], payloadHash: SigV4.emptyPayloadHash)
        XCTAssertTrue(authorization(SigV4.sign(request, credentials: suite, scope: suiteScope, date: suiteDate))
            .hasSuffix("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"))
    }

    /// S3 documentation, "Example: GET Object" (first 10 bytes of test.txt).
    func testS3DocumentedGetObject() {
        let request = SigV4.Request(method: "GET", path: "/test.txt",
                                    headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
                                    payloadHash: SigV4.emptyPayloadHash)
        let headers = SigV4.sign(request, credentials: s3Docs, scope: SigV4.Scope(region: "us-east-1"),
                                 date: AMZDate(timestamp: "20130524T000000Z"))
        XCTAssertEqual(authorization(headers),
                       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                       + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                       + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        XCTAssertTrue(headers.contains { $0 == ("x-amz-content-sha256", SigV4.emptyPayloadHash) })
    }

    /// S3 documentation, "Example: presigned URL" (test.txt, valid 86400 s).
    func testS3DocumentedPresignedURL() {
        let request = SigV4.Request(method: "GET", path: "/test.txt", headers: [("Host", "examplebucket.s3.amazonaws.com")],
                                    payloadHash: "UNSIGNED-PAYLOAD")
        let query = SigV4.presign(request, credentials: s3Docs, scope: SigV4.Scope(region: "us-east-1"),
                                  date: AMZDate(timestamp: "20130524T000000Z"), expires: 86400)
        XCTAssertEqual(query.first { $0.0 == "X-Amz-Signature" }?.1,
                       "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        XCTAssertEqual(query.first { $0.0 == "X-Amz-Credential" }?.1, "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request")
    }

    /// Cross-checked with botocore's S3SigV4Auth (an S3 PUT with metadata, a key needing
    /// encoding, and temporary credentials).
    func testAgreesWithBotocoreForAnS3PutAndASessionToken() {
        let put = SigV4.Request(method: "PUT", path: "/bucket/jobs/a b",
                                headers: [("Host", "127.0.0.1:8333"), ("x-amz-meta-jobstore-sha256", "abc"), ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
                                payloadHash: SigV4.emptyPayloadHash)
        XCTAssertTrue(authorization(SigV4.sign(put, credentials: suite, scope: SigV4.Scope(region: "us-east-1"), date: suiteDate))
            .hasSuffix("Signature=759d431bb9501bf4532ac2b543a714a1b90f8a248052bcd5e6a16838787a02a6"))
        var withToken = suite
        withToken.sessionToken = "AQoDYXdzEPT//////////wEXAMPLE"
        let get = SigV4.Request(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com")], payloadHash: SigV4.emptyPayloadHash)
        let headers = SigV4.sign(get, credentials: withToken, scope: suiteScope, date: suiteDate)
        XCTAssertTrue(authorization(headers).hasSuffix("Signature=e10798a7d4e6903cdea527f4ce90552d0984c47cedb232694699be85918af680"))
        XCTAssertTrue(headers.contains { $0.0 == "x-amz-security-token" })
        XCTAssertFalse("\(withToken)".contains("EXAMPLEKEY") || "\(withToken)".contains("AQoD"), "secrets never print")
    }

    func testDatesAndEncoding() {
        XCTAssertEqual(AMZDate(secondsSince1970: 1_440_938_160).timestamp, "20150830T123600Z")
        XCTAssertEqual(AMZDate(secondsSince1970: 951_782_400).timestamp, "20000229T000000Z")
        XCTAssertEqual(SigV4.encode("a b/ü~*", keepSlash: true), "a%20b/%C3%BC~%2A")
        XCTAssertEqual(SigV4.encode("a/b", keepSlash: false), "a%2Fb")
    }

    func testHeaderValuesAreTrimmedAndCollapsed() {
        XCTAssertEqual(SigV4.trimmed("plain value"), "plain value")
        XCTAssertEqual(SigV4.trimmed("  a   b\t c  "), "a b c")
        XCTAssertEqual(SigV4.trimmed("trailing "), "trailing")
        XCTAssertEqual(SigV4.trimmed(" leading"), "leading")
        XCTAssertEqual(SigV4.trimmed(""), "")
    }

    /// RFC 4231's HMAC-SHA256 vectors: a short key, a text key, and a key longer than a block.
    func testHMACSHA256MatchesRFC4231() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        XCTAssertEqual(hex(Crypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), "Hi There")),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertEqual(hex(Crypto.hmacSHA256(key: Array("Jefe".utf8), "what do ya want for nothing?")),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertEqual(hex(Crypto.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131),
                                             "Test Using Larger Than Block-Size Key - Hash Key First")),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    /// The memoized signing key is the one derived afresh (AWS's documented example key).
    func testSigningKeysAreMemoizedFaithfully() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        let fresh = SigV4.signingKey(secret: secret, day: "20150830", region: "us-east-1", service: "iam")
        XCTAssertEqual(fresh.map { String(format: "%02x", $0) }.joined(),
                       "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
        for _ in 0..<3 {
            XCTAssertEqual(SigningKeys.shared.key(secret: secret, day: "20150830", region: "us-east-1", service: "iam"), fresh)
        }
        XCTAssertNotEqual(SigningKeys.shared.key(secret: secret, day: "20150831", region: "us-east-1", service: "iam"), fresh)
    }
}
