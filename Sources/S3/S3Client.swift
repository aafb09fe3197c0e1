import Foundation

/// Signed S3 requests over the shared CurlSession: the calls Toil's store needs, path-style or
/// virtual-host addressing, any endpoint. Every attempt is signed afresh.
public final class S3Client: @unchecked Sendable {
    /// Where requests go and how buckets are addressed there: one value per region the daemon
    /// serves, so that AWS and an on-premises endpoint take the same code path.
    public struct Endpoint: Sendable {
        public var url: URL
        public var region: String
        /// Path style (`http://host/bucket/key`) or virtual host (`http://bucket.host/key`).
        public var pathStyle: Bool
        public init(url: URL, region: String, pathStyle: Bool = true) {
            self.url = url
            self.region = region
            self.pathStyle = pathStyle
        }
    }

    /// An S3 error response (or a bare status), with its XML error code when there is one.
    public struct S3Error: Error, Sendable, CustomStringConvertible {
        public let status: Int
        public let code: String
        public let message: String
        /// Attempts the request took: more than one means an earlier attempt's outcome is
        /// unknown (its answer was lost), so a conflict may be that attempt's own success.
        public var attempts = 1
        public init(status: Int, code: String, message: String, attempts: Int = 1) {
            self.status = status
            self.code = code
            self.message = message
            self.attempts = attempts
        }
        public var description: String { "S3 \(status) \(code): \(message)" }
    }

    public let endpoint: Endpoint
    public let session: CurlSession
    /// Attempts per request for retryable failures (5xx, 429/SlowDown, resets, timeouts).
    public var maxAttempts = 6
    /// Full-jitter backoff: attempt n sleeps a random time up to min(cap, base × 2ⁿ).
    public var backoffBase = 0.1
    public var backoffCap = 10.0
    /// The pace shared by every request of this client after a throttle.
    public let rate: AdaptiveRate
    /// Requests sent, by operation (shared by every client of one session).
    public let counters: S3RequestCounters
    /// When each bucket last answered as existing (see BucketSightings for what that allows).
    public let sightings = BucketSightings()
    /// Whether the endpoint can be reached, shared by every client of the endpoint.
    public let reachability: S3Reachability
    private let credentials: @Sendable () throws -> AWSCredentials

    public init(endpoint: Endpoint, session: CurlSession, rate: AdaptiveRate = AdaptiveRate(),
                counters: S3RequestCounters = S3RequestCounters(), reachability: S3Reachability? = nil,
                credentials: @escaping @Sendable () throws -> AWSCredentials) {
        self.reachability = reachability ?? S3Reachability(endpoint: endpoint.url.absoluteString, tolerance: 0)
        self.endpoint = endpoint
        self.session = session
        self.rate = rate
        self.counters = counters
        self.credentials = credentials
    }

    /// Sends one signed request, retrying retryable failures with full-jitter backoff (honouring
    /// Retry-After) and signing every attempt afresh; non-2xx answers become `S3Error` unless
    /// `accept` lists them. Every S3 call used here is idempotent, so a retry is always safe.
    ///
    /// When S3 cannot be reached (see `S3Reachability`), the call waits for the outage to end
    /// rather than spend its attempts: a refused or unresolvable connection, a TLS handshake
    /// failing after the endpoint answered before, or `maxAttempts` failures in a row that got
    /// no answer from an S3 able to serve (resets, timeouts, a gateway's 502/503/504, a 500).
    @discardableResult
    public func send(_ method: String, bucket: String, key: String? = nil, query: [(String, String)] = [],
                     headers: [(String, String)] = [], body: ArraySlice<UInt8> = [], accept: Set<Int> = [],
                     expectedResponseBytes: Int = 0) throws -> CurlSession.Response {
        var attempt = 0
        var ordinaryFailures = 0
        var metOutage: Double?
        let operation = S3Operation.name(method: method, hasKey: key != nil, query: query, headers: headers)
        while true {
            let ticket = try reachability.admit(metSince: metOutage)
            metOutage = ticket.waitingSince
            let started = DispatchTime.now().uptimeNanoseconds
            func count(_ update: (inout S3RequestCounters.Figures) -> Void) {
                let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
                counters.record(operation) {
                    $0.requests += 1
                    $0.bytesSent += UInt64(body.count)
                    $0.totalMicros += micros
                    $0.latency.record(micros: micros)
                    update(&$0)
                }
            }
            do {
                rate.admit()
                let response = try sendOnce(method, bucket: bucket, key: key, query: query, headers: headers, body: body,
                                            accept: accept, expectedResponseBytes: expectedResponseBytes, firstAttempt: attempt == 0)
                reachability.settle(ticket, .answered)
                reachability.finished(ticket)
                rate.succeeded()
                count {
                    $0.bytesReceived += UInt64(response.body.count)
                    if response.status == 304 { $0.notModified += 1 }
                }
                return response
            } catch let failure as RetryableFailure {
                attempt += 1
                // A call waits through outages for `tolerance` in all: a request that alone keeps
                // failing (say one key answered 500 while others are served, each of whose answers
                // ends the outage it began) fails as an ordinary error, not loops.
                // (While an outage lasts, `admit` ends the wait with S3Unreachable instead.)
                let waitedOut = !reachability.isUnreachable && metOutage.map { S3Reachability.now() - $0 >= reachability.tolerance } ?? false
                if let why = failure.unreachable, reachability.enabled, !waitedOut,
                   failure.noConnection || ticket.probe || reachability.isUnreachable || ordinaryFailures + 1 >= maxAttempts {
                    // S3 is away: the session's state now, and this call waits for it to end.
                    reachability.settle(ticket, .unreachable(why))
                    metOutage = metOutage ?? S3Reachability.now()
                    count { $0.retries += 1 }
                    continue
                }
                reachability.settle(ticket, failure.unreachable == nil ? .answered : .none)
                if failure.throttle { rate.throttled() }
                ordinaryFailures += 1
                let last = ordinaryFailures >= maxAttempts
                count {
                    if failure.throttle { $0.throttled += 1 }
                    if last { $0.errors += 1 } else { $0.retries += 1 }
                }
                guard !last else {
                    reachability.finished(ticket)
                    if var e = failure.error as? S3Error { e.attempts = attempt; throw e }
                    throw failure.error
                }
                let jitter = Double.random(in: 0...min(backoffCap, backoffBase * Double(1 << min(ordinaryFailures, 20))))
                let delay = max(jitter, failure.retryAfter ?? 0)
                usleep(useconds_t(min(delay, backoffCap) * 1_000_000))
            } catch {
                // An S3 error answer or a refused certificate: the endpoint answered.
                reachability.settle(ticket, error is S3Error || error is CertificateRefused ? .answered : .none)
                reachability.finished(ticket)
                count { $0.errors += 1 }
                if var e = error as? S3Error { e.attempts = attempt + 1; throw e }
                throw error
            }
        }
    }

    @discardableResult
    public func send(_ method: String, bucket: String, key: String? = nil, query: [(String, String)] = [],
                     headers: [(String, String)] = [], body: [UInt8], accept: Set<Int> = []) throws -> CurlSession.Response {
        try send(method, bucket: bucket, key: key, query: query, headers: headers, body: body[...], accept: accept)
    }

    /// A failure worth another attempt, carrying the error to throw when attempts run out.
    struct RetryableFailure: Error {
        let error: Error
        let retryAfter: Double?
        /// The server asked the whole session to slow down (503, 429, SlowDown).
        var throttle = false
        /// Why no S3 able to serve answered (a transport failure, a gateway's 502/503/504, a 500); nil when one did.
        var unreachable: String?
        /// No connection could be made at all: an outage at once, not after `maxAttempts`.
        var noConnection = false
    }

    private func sendOnce(_ method: String, bucket: String, key: String?, query: [(String, String)],
                          headers: [(String, String)], body: ArraySlice<UInt8>, accept: Set<Int>,
                          expectedResponseBytes: Int, firstAttempt: Bool) throws -> CurlSession.Response {
        let (host, path) = location(bucket: bucket, key: key)
        // A body covered by Content-MD5 (checked by the server) need not be hashed a second
        // time for the signature: S3's UNSIGNED-PAYLOAD, only in that case.
        let covered = !body.isEmpty && headers.contains { $0.0.lowercased() == "content-md5" }
        let payloadHash = covered ? "UNSIGNED-PAYLOAD" : Crypto.sha256Hex(body)
        let request = SigV4.Request(method: method, path: path, query: query, headers: headers + [("host", host)], payloadHash: payloadHash)
        let signed = SigV4.sign(request, credentials: try credentials(), scope: SigV4.Scope(region: endpoint.region),
                                date: AMZDate(secondsSince1970: Int(Date().timeIntervalSince1970)))
        var url = "\(endpoint.url.scheme ?? "https")://\(host)\(SigV4.encode(path, keepSlash: true))"
        if !query.isEmpty {
            url += "?" + query.map { "\(SigV4.encode($0.0, keepSlash: false))=\(SigV4.encode($0.1, keepSlash: false))" }.joined(separator: "&")
        }
        let response: CurlSession.Response
        do {
            response = try session.perform(CurlSession.Request(method: method, url: url, headers: headers + signed, body: body,
                                                               expectedResponseBytes: expectedResponseBytes))
        } catch let e as CurlSession.TransportError where TLSSettings.certificateErrors.contains(e.code) {
            // A certificate refused now will be refused again: fail at once, naming the endpoint.
            throw CertificateRefused(endpoint: endpoint.url.absoluteString, transport: e, tls: session.tls)
        } catch let e as CurlSession.TransportError {
            throw RetryableFailure(error: e, retryAfter: nil, unreachable: e.description,
                                   noConnection: Self.isConnectFailure(e, answeredBefore: reachability.hasAnswered))
        }
        if (200..<300).contains(response.status) || accept.contains(response.status) {
            sightings.record(method: method, bucket: bucket, key: key, status: response.status)
            return response
        }
        let xml = String(decoding: response.body, as: UTF8.self)
        let error = S3Error(status: response.status, code: Self.element("Code", in: xml) ?? "",
                            message: Self.element("Message", in: xml) ?? "HTTP \(response.status)")
        sightings.record(method: method, bucket: bucket, key: key, status: response.status, code: error.code)
        // BadDigest / XAmzContentSHA256Mismatch: the body was damaged on its way (the server
        // checked it against our MD5 or signed SHA-256); it is sent again from memory.
        // 501 NotImplemented is the server's permanent answer, not a transient one.
        let serverFault = response.status >= 500 && response.status != 501
        if serverFault || response.status == 429 || ["SlowDown", "RequestTimeout", "BadDigest",
                                                      "XAmzContentSHA256Mismatch"].contains(error.code) {
            let throttle = response.status == 503 || response.status == 429 || error.code == "SlowDown"
            // No S3 that can serve: a gateway's 502, 504 or 503 that is not S3's SlowDown, or a
            // 500 InternalError, which a restarting server answers until it is ready (SeaweedFS
            // did for seconds in CI after its restart, longer than the ordinary attempts last).
            let gateway = [502, 503, 504].contains(response.status) && error.code != "SlowDown"
            let unwell: String? = if gateway {
                "HTTP \(response.status) from a gateway"
            } else if serverFault && error.code != "SlowDown" {
                "HTTP \(response.status) \(error.code.isEmpty ? "from S3" : error.code)"
            } else {
                nil
            }
            throw RetryableFailure(error: error, retryAfter: response.headers["retry-after"].flatMap(Double.init), throttle: throttle,
                                   unreachable: unwell)
        }
        // A signature refused once is signed afresh and sent again, once: SeaweedFS under load
        // refused one GET in ~13,000 of a correctly signed request (CI's LoadTests); a wrong
        // secret is refused again, at the cost of one request.
        if firstAttempt && error.code == "SignatureDoesNotMatch" {
            throw RetryableFailure(error: error, retryAfter: nil)
        }
        throw error
    }

    /// libcurl failures that mean no connection was made: the name did not resolve, the port
    /// refused, the connect timed out, or (once the endpoint has answered) the TLS handshake failed.
    static func isConnectFailure(_ e: CurlSession.TransportError, answeredBefore: Bool) -> Bool {
        switch e.code {
        case 5, 6, 7: true  // CURLE_COULDNT_RESOLVE_PROXY, _RESOLVE_HOST, _CONNECT
        case 28: e.message.hasPrefix("Connection timed out") || e.message.hasPrefix("Failed to connect")
        case 35: answeredBefore  // CURLE_SSL_CONNECT_ERROR
        default: false
        }
    }

    /// A SigV4 presigned GET URL for the object, valid `expiresIn` seconds.
    public func presignedURL(bucket: String, key: String, expiresIn seconds: Int) throws -> String {
        let (host, path) = location(bucket: bucket, key: key)
        let request = SigV4.Request(method: "GET", path: path, headers: [("host", host)], payloadHash: "UNSIGNED-PAYLOAD")
        let query = SigV4.presign(request, credentials: try credentials(), scope: SigV4.Scope(region: endpoint.region),
                                  date: AMZDate(secondsSince1970: Int(Date().timeIntervalSince1970)), expires: seconds)
        return "\(endpoint.url.scheme ?? "https")://\(host)\(SigV4.encode(path, keepSlash: true))?"
            + query.map { "\(SigV4.encode($0.0, keepSlash: false))=\(SigV4.encode($0.1, keepSlash: false))" }.joined(separator: "&")
    }

    private func location(bucket: String, key: String?) -> (host: String, path: String) {
        var host = endpoint.url.host ?? "localhost"
        if let port = endpoint.url.port { host += ":\(port)" }
        let keyPath = key.map { "/" + $0 } ?? ""
        if bucket.isEmpty { return (host, "/") }  // the service itself (ListBuckets)
        // A dotted bucket name cannot be a host name under a TLS wildcard certificate.
        let dottedOverTLS = bucket.contains(".") && endpoint.url.scheme == "https"
        if endpoint.pathStyle || dottedOverTLS { return (host, "/\(bucket)\(keyPath)") }
        return ("\(bucket).\(host)", keyPath.isEmpty ? "/" : keyPath)
    }

    /// The text of the first `<name>` element (S3's XML is flat enough for this).
    static func element(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"), let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else {
            return nil
        }
        return String(xml[open.upperBound..<close.lowerBound])
    }
}
