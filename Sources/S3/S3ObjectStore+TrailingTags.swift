import Foundation
import ObjectStore

/// Metadata known only after a multipart body was read (its checksum) lives in the object's
/// tags: S3 fixes metadata when the upload is created, and tags can be set afterwards without
/// copying the object or reading the body twice. The tag set names the ETag it was written
/// for, so a reader never pairs an object with another version's checksum.
extension S3ObjectStore {
    /// Metadata flag: this object's trailing metadata is in its tags.
    static let trailingInTags = "jobstore-trailing-tags"
    /// Tag naming the ETag the other tags belong to.
    static let taggedETag = "jobstore-etag"

    func putTrailingTags(_ bucket: String, key: String, _ values: [String: String], etag: String) throws {
        var tags = values
        tags[Self.taggedETag] = Self.unquoted(etag)
        guard tags.count <= 10, tags.allSatisfy({ $0.key.utf8.count <= 128 && $0.value.utf8.count <= 256 }) else {
            throw ObjectStoreError.invalidName("\(key): trailing metadata does not fit S3 tags")
        }
        let body = "<Tagging><TagSet>" + tags.sorted { $0.key < $1.key }.map {
            "<Tag><Key>\(XMLText.escape($0.key))</Key><Value>\(XMLText.escape($0.value))</Value></Tag>"
        }.joined() + "</TagSet></Tagging>"
        let bytes = Array(body.utf8)
        try client.send("PUT", bucket: bucket, key: key, query: [("tagging", "")],
                        headers: [("Content-MD5", Base64.encode(MD5.digest(bytes))), ("Content-Type", "application/xml")],
                        body: bytes)
    }

    /// `info` with its trailing metadata merged in, when its tags hold it for this ETag.
    /// Tags missing or written for another version leave `info` as it is (unverifiable, like an
    /// object Toil wrote), never wrong.
    func withTrailingTags(_ info: ObjectInfo, bucket: String) throws -> ObjectInfo {
        guard info.metadata[Self.trailingInTags] != nil else { return info }
        let response: CurlSession.Response
        do {
            response = try client.send("GET", bucket: bucket, key: info.key, query: [("tagging", "")])
        } catch {
            throw map(error, bucket: bucket, key: info.key)
        }
        var tags: [String: String] = [:]
        for block in String(decoding: response.body, as: UTF8.self).components(separatedBy: "<Tag>").dropFirst() {
            if let k = S3Client.element("Key", in: block), let v = S3Client.element("Value", in: block) {
                tags[XMLText.unescape(k)] = XMLText.unescape(v)
            }
        }
        guard let etag = tags.removeValue(forKey: Self.taggedETag), etag == Self.unquoted(info.etag) else { return info }
        var merged = info
        merged.metadata.merge(tags) { _, tag in tag }
        return merged
    }

    static func unquoted(_ etag: String) -> String {
        etag.count >= 2 && etag.hasPrefix("\"") && etag.hasSuffix("\"") ? String(etag.dropFirst().dropLast()) : etag
    }
}
