import Foundation
import ObjectStore

/// The ObjectStore on S3 (any S3-compatible endpoint) through the node's one CurlSession.
///
/// Why one store per endpoint and region over a shared session and pool: every worker's
/// transfers share the node's connections and its transfer memory. Objects up to one part go in
/// one request; larger ones in parts moved `partConcurrency` at a time (see +Transfers).
public final class S3ObjectStore: ObjectStore {
    public let client: S3Client
    /// The part buffers (and so the part size) of the session.
    public let pool: BufferPool
    /// Parts of one transfer in flight at once.
    public let partConcurrency: Int
    /// The largest object a single PUT (or CopyObject) may carry (S3's limit).
    public static let maxSinglePut = 5 << 30
    /// Default part size: 50 MiB, as Toil's.
    public static let defaultPartSize = 50 << 20

    /// Where this daemon records its open multipart uploads (nil: nowhere).
    public let journal: UploadJournal?

    public init(client: S3Client, pool: BufferPool = BufferPool(partSize: S3ObjectStore.defaultPartSize, capacity: 8),
                partConcurrency: Int = 4, journal: UploadJournal? = nil) {
        self.journal = journal
        self.client = client
        self.pool = pool
        self.partConcurrency = max(1, partConcurrency)
    }

    /// Bucket names are unique per endpoint, so the endpoint names the objects.
    public var cacheIdentity: String? { "s3 \(client.endpoint.url.absoluteString)" }

    public func createBucket(_ bucket: String) throws {
        do {
            try client.send("PUT", bucket: bucket)
        } catch let e as S3Client.S3Error where e.code == "BucketAlreadyOwnedByYou" && e.attempts > 1 {
            return  // an earlier attempt made it; its answer was lost
        } catch let e as S3Client.S3Error where e.code == "BucketAlreadyOwnedByYou" || e.code == "BucketAlreadyExists" {
            throw ObjectStoreError.bucketAlreadyExists(bucket)
        } catch {
            throw map(error, bucket: bucket, key: nil)
        }
    }

    /// How long a sighting of a bucket stands in for asking whether it exists.
    public static let sightingWindow: Double = 10

    public func bucketRecentlySeen(_ bucket: String) -> Bool {
        client.sightings.seen(bucket, within: Self.sightingWindow)
    }

    public func bucketExists(_ bucket: String) throws -> Bool {
        do {
            return try client.send("HEAD", bucket: bucket, accept: [404]).status != 404
        } catch {
            throw map(error, bucket: bucket, key: nil)
        }
    }

    /// Aborts every unfinished upload, deletes every object in batches of 1,000 (DeleteObjects),
    /// and, in a versioned bucket, every old version and delete marker; then the bucket.
    /// Idempotent.
    public func destroyBucket(_ bucket: String) throws {
        guard try bucketExists(bucket) else { return }
        for upload in try listMultipartUploads(bucket) {
            do {
                try abortMultipartUpload(bucket, key: upload.key, uploadID: upload.uploadID)
            } catch {
                throw map(error, bucket: bucket, key: upload.key)
            }
        }
        while true {
            let page = try list(bucket, prefix: "", startAfter: "", maxKeys: 1000)
            if page.objects.isEmpty { break }
            try delete(bucket, keys: page.objects.map(\.key))
        }
        do {
            try client.send("DELETE", bucket: bucket, accept: [404])
        } catch let e as S3Client.S3Error where e.code == "BucketNotEmpty" {
            try deleteAllVersions(bucket)
            do {
                try client.send("DELETE", bucket: bucket, accept: [404])
            } catch {
                throw map(error, bucket: bucket, key: nil)
            }
        } catch {
            throw map(error, bucket: bucket, key: nil)
        }
    }

    /// Deletes every version and delete marker (ListObjectVersions, DeleteObjects with ids).
    func deleteAllVersions(_ bucket: String) throws {
        while true {
            let xml: String
            do {
                xml = String(decoding: try client.send("GET", bucket: bucket, query: [("versions", ""), ("max-keys", "1000")]).body,
                             as: UTF8.self)
            } catch {
                throw map(error, bucket: bucket, key: nil)
            }
            var entries: [(key: String, version: String?)] = []
            for separator in ["<Version>", "<DeleteMarker>"] {
                for block in xml.components(separatedBy: separator).dropFirst() {
                    if let key = S3Client.element("Key", in: block), let id = S3Client.element("VersionId", in: block) {
                        entries.append((XMLText.unescape(key), XMLText.unescape(id)))
                    }
                }
            }
            if entries.isEmpty { return }
            guard try deleteObjects(bucket, entries[...]) else { return }
        }
    }

    public func head(_ bucket: String, key: String, options: GetOptions) throws -> ObjectInfo? {
        do {
            var headers = Self.sseHeaders(options.encryptionKey)
            if let etag = options.ifMatch { headers.append(("If-Match", etag)) }
            let response = try client.send("HEAD", bucket: bucket, key: key, headers: headers, accept: [404])
            if response.status == 404 {
                // HEAD has no body to tell a missing bucket from a missing key: ask, unless the
                // bucket answered a moment ago.
                if try !bucketRecentlySeen(bucket) && !bucketExists(bucket) { throw ObjectStoreError.noSuchBucket(bucket) }
                return nil
            }
            return try withTrailingTags(Self.info(key: key, headers: response.headers), bucket: bucket)
        } catch let e as ObjectStoreError {
            throw e
        } catch {
            throw map(error, bucket: bucket, key: key)
        }
    }

    public func list(_ bucket: String, prefix: String, startAfter: String, maxKeys: Int) throws -> ListPage {
        var query = [("list-type", "2"), ("max-keys", String(max(1, min(maxKeys, 1000)))), ("prefix", prefix)]
        if !startAfter.isEmpty { query.append(("start-after", startAfter)) }
        let xml: String
        do {
            xml = String(decoding: try client.send("GET", bucket: bucket, query: query).body, as: UTF8.self)
        } catch {
            throw map(error, bucket: bucket, key: nil)
        }
        var objects: [ObjectInfo] = []
        for block in xml.components(separatedBy: "<Contents>").dropFirst() {
            guard let key = S3Client.element("Key", in: block).map(XMLText.unescape) else { continue }
            let size = UInt64(S3Client.element("Size", in: block) ?? "0") ?? 0
            objects.append(ObjectInfo(key: key, size: size, etag: XMLText.unescape(S3Client.element("ETag", in: block) ?? "")))
        }
        return ListPage(objects: objects, truncated: S3Client.element("IsTruncated", in: xml) == "true")
    }

    /// DeleteObjects, 1,000 keys per request (Toil sends one DELETE per object).
    public func delete(_ bucket: String, keys: [String]) throws {
        var start = 0
        while start < keys.count {
            let batch = keys[start..<min(start + 1000, keys.count)]
            start += batch.count
            guard try deleteObjects(bucket, batch.map { (key: $0, version: String?.none) }[...]) else { return }
        }
    }

    /// One DeleteObjects request (at most 1,000 objects, a version each where given); false when
    /// the bucket is gone. A key the server could not delete is an error.
    private func deleteObjects(_ bucket: String, _ objects: ArraySlice<(key: String, version: String?)>) throws -> Bool {
        let body = Array(("<Delete><Quiet>true</Quiet>" + objects.map {
            "<Object><Key>\(XMLText.escape($0.key))</Key>" + ($0.version.map { "<VersionId>\(XMLText.escape($0))</VersionId>" } ?? "")
                + "</Object>"
        }.joined() + "</Delete>").utf8)
        do {
            let response = try client.send("POST", bucket: bucket, query: [("delete", "")],
                                           headers: [("Content-MD5", Base64.encode(MD5.digest(body))), ("Content-Type", "application/xml")],
                                           body: body[...], accept: [404])
            if response.status == 404 { return false }
            let xml = String(decoding: response.body, as: UTF8.self)
            if xml.contains("<Error>") {
                throw ObjectStoreError.io("DeleteObjects failed: \(S3Client.element("Message", in: xml) ?? xml)")
            }
            return true
        } catch let e as ObjectStoreError {
            throw e
        } catch {
            throw map(error, bucket: bucket, key: nil)
        }
    }

    public func localPath(_ bucket: String, key: String) throws -> String? { nil }

    public func url(_ bucket: String, key: String, expiresIn seconds: Int) throws -> String {
        try client.presignedURL(bucket: bucket, key: key, expiresIn: seconds)
    }

    /// SSE-C: the key travels with every call that touches the object's bytes or its size.
    static func sseHeaders(_ key: EncryptionKey?) -> [(String, String)] {
        guard let key else { return [] }
        return key.withUnsafeBytes { raw in
            [("x-amz-server-side-encryption-customer-algorithm", "AES256"),
             ("x-amz-server-side-encryption-customer-key", Base64.encode(raw)),
             ("x-amz-server-side-encryption-customer-key-MD5", Base64.encode(MD5.digest(raw)))]
        }
    }

    static func info(key: String, headers: [String: String]) -> ObjectInfo {
        var metadata: [String: String] = [:]
        for (name, value) in headers where name.hasPrefix("x-amz-meta-") {
            metadata[String(name.dropFirst("x-amz-meta-".count))] = value
        }
        return ObjectInfo(key: key, size: UInt64(headers["content-length"] ?? "0") ?? 0, etag: headers["etag"] ?? "", metadata: metadata)
    }

    func map(_ error: Error, bucket: String, key: String?) -> ObjectStoreError {
        if let e = error as? ObjectStoreError { return e }
        if let e = error as? S3Client.S3Error {
            switch (e.status, e.code) {
            case (_, "NoSuchBucket"): return .noSuchBucket(bucket)
            case (_, "NoSuchKey"), (404, _): return .noSuchKey(key ?? bucket)
            case (400, "BadDigest"): return .dataLoss("\(key ?? bucket): the server received other bytes than sent")
            // Our object requests carry nothing else a server could reject this way: an encrypted
            // object read without its key, or with another one.
            // A HEAD has no body, so no error code: a 403 without one on an object is SeaweedFS's
            // answer to a HEAD with another key (AWS answers 400), as Toil's s3_key_exists reads it.
            case (400, _) where key != nil, (403, "AccessDenied") where key != nil, (403, "") where key != nil:
                return .badEncryptionKey("\(key ?? ""): the SSE-C key is missing or wrong (\(e.code) \(e.message))")
            case (412, _): return .preconditionFailed("\(key ?? bucket): \(e.message)")
            case (403, _): return .permissionDenied("\(e.code): \(e.message)")
            case (500..., _), (429, _), (_, "SlowDown"): return .unavailable("\(e.code): \(e.message)")
            default: return .io("\(e)")
            }
        }
        if let e = error as? CurlSession.TransportError { return .unavailable("\(e)") }
        if let e = error as? CertificateRefused { return .unavailable("\(e)") }
        if let e = error as? S3Unreachable { return .unavailable("\(e)") }
        return .io("\(error)")
    }
}

/// XML text escaping for keys in S3 request and response bodies.
enum XMLText {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&apos;")
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }
}
