import Foundation
import ObjectStore

/// S3's multipart calls: create, upload part, complete, abort, list uploads, and server-side
/// copies (CopyObject, or UploadPartCopy above 5 GiB).
extension S3ObjectStore {
    /// An unfinished multipart upload.
    public struct Upload: Sendable, Equatable {
        public var key: String
        public var uploadID: String
        /// Seconds since 1970.
        public var initiated: Double
    }

    func createMultipartUpload(_ bucket: String, key: String, headers: [(String, String)]) throws -> String {
        // Journaled before it is sent: a crash between S3's answer and the `begin` line still
        // leaves the next start knowing that an upload of this key may be open (UploadJournal).
        let intent = journal?.intend(region: client.endpoint.region, bucket: bucket, key: key)
        defer { if let intent { journal?.settle(intent) } }
        let response = try client.send("POST", bucket: bucket, key: key, query: [("uploads", "")], headers: headers)
        let xml = String(decoding: response.body, as: UTF8.self)
        guard let id = S3Client.element("UploadId", in: xml).map(XMLText.unescape), !id.isEmpty else {
            throw ObjectStoreError.io("CreateMultipartUpload for \(key) answered without an UploadId")
        }
        journal?.begin(region: client.endpoint.region, bucket: bucket, key: key, uploadID: id)
        return id
    }

    /// Uploads one part; returns its ETag.
    func uploadPart(_ bucket: String, key: String, uploadID: String, number: Int, bytes: ArraySlice<UInt8>,
                    encryptionKey: EncryptionKey?) throws -> String {
        // Content-MD5, not only the signed SHA-256: SeaweedFS checks the former and ignores the
        // latter (measured: a part damaged in transit was stored). With it the body is sent
        // UNSIGNED-PAYLOAD, one hash as for single PUTs.
        let headers = [("Content-MD5", Base64.encode(MD5.digest(bytes)))] + Self.sseHeaders(encryptionKey)
        let response = try client.send("PUT", bucket: bucket, key: key,
                                       query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                       headers: headers, body: bytes)
        guard let etag = response.headers["etag"] else {
            throw ObjectStoreError.io("UploadPart \(number) of \(key) answered without an ETag")
        }
        return etag
    }

    /// Completes the upload from its parts' ETags (in part order); returns the object's ETag.
    /// S3 may answer 200 with an error in the body: that is an error too.
    func completeMultipartUpload(_ bucket: String, key: String, uploadID: String, etags: [String],
                                 createOnly: Bool) throws -> String {
        var body = "<CompleteMultipartUpload>"
        for (index, etag) in etags.enumerated() {
            body += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(XMLText.escape(etag))</ETag></Part>"
        }
        body += "</CompleteMultipartUpload>"
        var headers = [("Content-Type", "application/xml")]
        if createOnly { headers.append(("If-None-Match", "*")) }
        let response: CurlSession.Response
        do {
            response = try client.send("POST", bucket: bucket, key: key, query: [("uploadId", uploadID)],
                                       headers: headers, body: ArraySlice(body.utf8))
        } catch let e as S3Client.S3Error where e.attempts > 1 && (e.code == "NoSuchUpload" || e.status == 412) {
            // An earlier attempt completed the upload and its answer was lost: the object there
            // has the ETag S3 derives from these parts (MD5 of their MD5s, "-count").
            let expected = Self.multipartETag(etags)
            if let expected, let there = try? client.send("HEAD", bucket: bucket, key: key, accept: [403, 404]),
               there.status == 200, Self.quoted(there.headers["etag"] ?? "") == expected {
                journal?.end(uploadID: uploadID)
                return expected
            }
            throw e
        }
        journal?.end(uploadID: uploadID)
        let xml = String(decoding: response.body, as: UTF8.self)
        if xml.contains("<Error>") {
            throw S3Client.S3Error(status: 500, code: S3Client.element("Code", in: xml) ?? "",
                                   message: S3Client.element("Message", in: xml) ?? xml)
        }
        return Self.quoted(response.headers["etag"] ?? S3Client.element("ETag", in: xml).map(XMLText.unescape) ?? "")
    }

    /// The ETag S3 gives an object completed from parts with these ETags (hex MD5s), or nil
    /// when a part's ETag is not one (SSE-C and some servers).
    static func multipartETag(_ etags: [String]) -> String? {
        var concatenated: [UInt8] = []
        for etag in etags {
            let hex = Array(etag.replacingOccurrences(of: "\"", with: "").utf8)
            guard hex.count == 32 else { return nil }
            for i in stride(from: 0, to: 32, by: 2) {
                guard let byte = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
                concatenated.append(byte)
            }
        }
        let digest = MD5.digest(concatenated[...]).map { String(format: "%02x", $0) }.joined()
        return "\"\(digest)-\(etags.count)\""
    }

    /// Aborts an upload (a leftover of a crash); a missing one is not an error.
    public func abortUpload(_ bucket: String, key: String, uploadID: String) throws {
        do {
            try abortMultipartUpload(bucket, key: key, uploadID: uploadID)
        } catch {
            throw map(error, bucket: bucket, key: key)
        }
    }

    func abortMultipartUpload(_ bucket: String, key: String, uploadID: String) throws {
        try client.send("DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)], accept: [404])
        journal?.end(uploadID: uploadID)
    }

    /// Every unfinished multipart upload in the bucket (all pages).
    public func listMultipartUploads(_ bucket: String) throws -> [Upload] {
        var uploads: [Upload] = []
        var keyMarker = ""
        var idMarker = ""
        while true {
            var query = [("uploads", ""), ("max-uploads", "1000")]
            if !keyMarker.isEmpty { query += [("key-marker", keyMarker), ("upload-id-marker", idMarker)] }
            let xml: String
            do {
                xml = String(decoding: try client.send("GET", bucket: bucket, query: query).body, as: UTF8.self)
            } catch {
                throw map(error, bucket: bucket, key: nil)
            }
            for block in xml.components(separatedBy: "<Upload>").dropFirst() {
                guard let key = S3Client.element("Key", in: block).map(XMLText.unescape),
                      let id = S3Client.element("UploadId", in: block).map(XMLText.unescape) else { continue }
                let initiated = S3Client.element("Initiated", in: block).flatMap(Self.parseISO8601) ?? 0
                uploads.append(Upload(key: key, uploadID: id, initiated: initiated))
            }
            guard S3Client.element("IsTruncated", in: xml) == "true",
                  let nextKey = S3Client.element("NextKeyMarker", in: xml).map(XMLText.unescape), !nextKey.isEmpty else { break }
            keyMarker = nextKey
            idMarker = S3Client.element("NextUploadIdMarker", in: xml).map(XMLText.unescape) ?? ""
        }
        return uploads
    }

    /// Aborts unfinished uploads older than `age` seconds (what interrupted writes leave behind).
    public func collectGarbage(_ bucket: String, olderThan age: Double) throws -> Int {
        let cutoff = Date().timeIntervalSince1970 - age
        var removed = 0
        for upload in try listMultipartUploads(bucket) where upload.initiated <= cutoff {
            do {
                try abortMultipartUpload(bucket, key: upload.key, uploadID: upload.uploadID)
            } catch {
                throw map(error, bucket: bucket, key: upload.key)
            }
            removed += 1
        }
        return removed
    }

    /// Copies an object on the server (no bytes through this node). `metadata` nil keeps the
    /// source's; otherwise it replaces it. `ifMatch` guards against a source changed meanwhile.
    /// Objects above 5 GiB are copied part by part (UploadPartCopy), parts in parallel.
    @discardableResult
    public func copy(from source: (bucket: String, key: String), to bucket: String, key: String, size: UInt64,
                     metadata: [String: String]?, ifMatch: String?, sourceKey: EncryptionKey?,
                     destinationKey: EncryptionKey?, partThreshold: UInt64 = UInt64(S3ObjectStore.maxSinglePut)) throws -> String {
        let copySource = "/" + SigV4.encode("\(source.bucket)/\(source.key)", keepSlash: true)
        var sourceHeaders = [("x-amz-copy-source", copySource)] + Self.sseCopySourceHeaders(sourceKey)
        if let ifMatch { sourceHeaders.append(("x-amz-copy-source-if-match", ifMatch)) }
        let metadataHeaders = Self.metadataHeaders(metadata ?? [:])
        do {
            if size <= partThreshold {
                var headers = sourceHeaders + Self.sseHeaders(destinationKey)
                if metadata != nil { headers += [("x-amz-metadata-directive", "REPLACE")] + metadataHeaders }
                let response = try client.send("PUT", bucket: bucket, key: key, headers: headers)
                let xml = String(decoding: response.body, as: UTF8.self)
                if xml.contains("<Error>") {
                    throw S3Client.S3Error(status: 500, code: S3Client.element("Code", in: xml) ?? "",
                                           message: S3Client.element("Message", in: xml) ?? xml)
                }
                return Self.quoted(S3Client.element("ETag", in: xml).map(XMLText.unescape) ?? "")
            }
            // UploadPartCopy keeps nothing of the source's metadata: carry it over explicitly.
            var carried = metadata
            if carried == nil {
                carried = try head(source.bucket, key: source.key, options: GetOptions(encryptionKey: sourceKey))?.metadata ?? [:]
            }
            let createHeaders = Self.metadataHeaders(carried ?? [:]) + Self.sseHeaders(destinationKey)
            let uploadID = try createMultipartUpload(bucket, key: key, headers: createHeaders)
            let partSize = UInt64(max(pool.partSize, 5 << 20))
            let count = Int((size + partSize - 1) / partSize)
            let etags = GrowingStrings()
            let workers = PartWorkers(width: partConcurrency)
            for index in 0..<count {
                let first = UInt64(index) * partSize
                let last = min(size, first + partSize) - 1
                workers.submit { cancelled in
                    if cancelled { return }
                    let response = try self.client.send(
                        "PUT", bucket: bucket, key: key,
                        query: [("partNumber", String(index + 1)), ("uploadId", uploadID)],
                        headers: sourceHeaders + [("x-amz-copy-source-range", "bytes=\(first)-\(last)")]
                            + Self.sseHeaders(destinationKey))
                    let xml = String(decoding: response.body, as: UTF8.self)
                    guard let etag = S3Client.element("ETag", in: xml).map(XMLText.unescape), !xml.contains("<Error>") else {
                        throw ObjectStoreError.io("UploadPartCopy \(index + 1) of \(key) failed: \(xml)")
                    }
                    etags.set(index, etag)
                }
            }
            do {
                try workers.finish()
                return try completeMultipartUpload(bucket, key: key, uploadID: uploadID, etags: etags.values, createOnly: false)
            } catch {
                try? abortMultipartUpload(bucket, key: key, uploadID: uploadID)
                throw error
            }
        } catch {
            throw map(error, bucket: bucket, key: key)
        }
    }

    /// ETags as HEAD and GET give them (in quotes); some servers leave the quotes out of XML.
    static func quoted(_ etag: String) -> String {
        etag.isEmpty || etag.hasPrefix("\"") ? etag : "\"\(etag)\""
    }

    /// SSE-C headers for the source of a copy.
    static func sseCopySourceHeaders(_ key: EncryptionKey?) -> [(String, String)] {
        sseHeaders(key).map { ("x-amz-copy-source-" + $0.0.dropFirst("x-amz-".count), $0.1) }
    }

    static func parseISO8601(_ text: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = formatter.date(from: text) { return d.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970
    }
}

extension S3ObjectStore {
    /// S3 to S3 on the same session and endpoint (any AWS regions): CopyObject, or parts of
    /// UploadPartCopy above 5 GiB, guarded by the source's ETag.
    public func serverSideCopy(from sourceStore: any ObjectStore, bucket sourceBucket: String, key sourceKey: String,
                               to bucket: String, key: String, options: CopyOptions) throws -> ObjectInfo? {
        guard let other = sourceStore as? S3ObjectStore, other.client.session === client.session else { return nil }
        let hosts = (other.client.endpoint.url.host ?? "", client.endpoint.url.host ?? "")
        guard hosts.0 == hosts.1 || (hosts.0.hasSuffix(".amazonaws.com") && hosts.1.hasSuffix(".amazonaws.com")) else { return nil }
        guard let source = try other.head(sourceBucket, key: sourceKey, options: GetOptions(encryptionKey: options.sourceEncryptionKey)) else {
            throw ObjectStoreError.noSuchKey(sourceKey)
        }
        // The source's metadata (with a checksum its tags held, now plain metadata of the copy,
        // which has an ETag of its own), plus the caller's.
        var metadata = source.metadata
        metadata.removeValue(forKey: Self.trailingInTags)
        metadata.merge(options.metadata) { $1 }
        let etag = try copy(from: (sourceBucket, sourceKey), to: bucket, key: key, size: source.size, metadata: metadata,
                            ifMatch: source.etag, sourceKey: options.sourceEncryptionKey, destinationKey: options.encryptionKey)
        return ObjectInfo(key: key, size: source.size, etag: etag, metadata: metadata, lastModified: Date().timeIntervalSince1970)
    }
}
