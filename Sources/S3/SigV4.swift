import ObjectStore

/// AWS Signature Version 4 as a pure function: `(request, credentials, scope, date) -> headers`
/// (or presigned query parameters). No clock, no I/O: tested against AWS's published vectors.
public enum SigV4 {
    /// An HTTP request to sign. `path` is the decoded path ("/bucket/a b"); it is encoded here.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Decoded query parameters; order does not matter.
        public var query: [(String, String)]
        /// Headers to sign (must include `host`).
        public var headers: [(String, String)]
        /// Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// Where a signature is valid.
    public struct Scope: Sendable {
        public var region: String
        public var service: String
        public init(region: String, service: String = "s3") {
            self.region = region
            self.service = service
        }
    }

    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The headers to add to `request`: `x-amz-date`, `x-amz-content-sha256` (S3),
    /// `x-amz-security-token` (temporary credentials) and `authorization`.
    public static func sign(_ request: Request, credentials: AWSCredentials, scope: Scope, date: AMZDate) -> [(String, String)] {
        var added: [(String, String)] = [("x-amz-date", date.timestamp)]
        if scope.service == "s3" { added.append(("x-amz-content-sha256", request.payloadHash)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        var signed = request
        signed.headers += added
        let (canonical, signedHeaders) = canonicalRequest(signed, service: scope.service)
        let credentialScope = "\(date.day)/\(scope.region)/\(scope.service)/aws4_request"
        let signature = self.signature(canonical, credentials: credentials, scope: scope, credentialScope: credentialScope, date: date)
        added.append(("authorization", "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(credentialScope), "
                      + "SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return added
    }

    /// The query parameters of a presigned URL valid for `expires` seconds from `date`.
    public static func presign(_ request: Request, credentials: AWSCredentials, scope: Scope, date: AMZDate, expires: Int) -> [(String, String)] {
        let credentialScope = "\(date.day)/\(scope.region)/\(scope.service)/aws4_request"
        var query: [(String, String)] = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(credentialScope)"),
            ("X-Amz-Date", date.timestamp),
            ("X-Amz-Expires", String(expires)),
        ]
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        let signedHeaderNames = Set(request.headers.map { $0.0.lowercased() }).sorted().joined(separator: ";")
        query.append(("X-Amz-SignedHeaders", signedHeaderNames))
        var unsigned = request
        unsigned.query += query
        unsigned.payloadHash = "UNSIGNED-PAYLOAD"
        let (canonical, _) = canonicalRequest(unsigned, service: scope.service)
        query.append(("X-Amz-Signature", signature(canonical, credentials: credentials, scope: scope, credentialScope: credentialScope, date: date)))
        return query
    }

    static func signature(_ canonical: String, credentials: AWSCredentials, scope: Scope, credentialScope: String, date: AMZDate) -> String {
        let stringToSign = "AWS4-HMAC-SHA256\n\(date.timestamp)\n\(credentialScope)\n" + Crypto.sha256Hex(Array(canonical.utf8))
        let key = SigningKeys.shared.key(secret: credentials.secretAccessKey, day: date.day, region: scope.region, service: scope.service)
        return SHA256Digest.hex(Crypto.hmacSHA256(key: key, stringToSign))
    }

    /// The derived signing key changes only with the day, region, service or secret: four
    /// HMACs kept rather than redone for every request. Pure: the same key either way.
    static func signingKey(secret: String, day: String, region: String, service: String) -> [UInt8] {
        var key = Crypto.hmacSHA256(key: Array("AWS4\(secret)".utf8), day)
        key = Crypto.hmacSHA256(key: key, region)
        key = Crypto.hmacSHA256(key: key, service)
        return Crypto.hmacSHA256(key: key, "aws4_request")
    }

    /// The canonical request and the signed-header list.
    static func canonicalRequest(_ request: Request, service: String) -> (String, String) {
        var path = encode(request.path, keepSlash: true)
        if service != "s3" { path = encode(path, keepSlash: true) }  // other services encode twice
        if path.isEmpty { path = "/" }
        let encoded: [(key: String, value: String)] = request.query.map { pair in
            (key: encode(pair.0, keepSlash: false), value: encode(pair.1, keepSlash: false))
        }
        let ordered = encoded.sorted { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        let query = ordered.map { pair in pair.key + "=" + pair.value }.joined(separator: "&")
        var headers: [String: [String]] = [:]
        for (name, value) in request.headers {
            headers[name.lowercased(), default: []].append(trimmed(value))
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonical = [request.method, path, query, canonicalHeaders, signedHeaders, request.payloadHash].joined(separator: "\n")
        return (canonical, signedHeaders)
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters (and "/" in paths).
    public static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                let digits = Array("0123456789ABCDEF")
                out.append("%")
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 15)])
            }
        }
        return out
    }

    /// Header values: outer whitespace trimmed, inner runs of spaces collapsed to one.
    static func trimmed(_ value: String) -> String {
        // Most values have nothing to trim: checked on the bytes before any splitting.
        var previousSpace = true  // a leading space needs trimming
        var clean = true
        for b in value.utf8 {
            let space = b == 0x20 || b == 0x09
            if b == 0x09 || (space && previousSpace) { clean = false; break }
            previousSpace = space
        }
        if clean && !previousSpace { return value }
        return value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }
}

/// A signing date: `timestamp` is `YYYYMMDD'T'HHMMSS'Z'`, `day` its first eight characters.
public struct AMZDate: Sendable, Equatable {
    public let timestamp: String
    public var day: String { String(timestamp.prefix(8)) }

    /// From seconds since 1970 (UTC).
    public init(secondsSince1970 seconds: Int) {
        let days = seconds.quotientAndRemainder(dividingBy: 86_400)
        let (y, m, d) = AMZDate.civil(fromDays: days.quotient)
        let s = days.remainder
        func pad(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        timestamp = "\(pad(y, 4))\(pad(m, 2))\(pad(d, 2))T\(pad(s / 3600, 2))\(pad(s % 3600 / 60, 2))\(pad(s % 60, 2))Z"
    }

    public init(timestamp: String) { self.timestamp = timestamp }

    /// Howard Hinnant's days-to-civil algorithm.
    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
