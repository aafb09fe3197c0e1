import Foundation
import JobStoreCore
import ObjectStore
import S3

/// ImportFile's and ExportFile's reach outside the stores: s3:// buckets through the daemon's
/// one S3 session (so S3 to S3 is a server-side copy), and http(s):// downloads through the
/// same libcurl session, fetched in ranged chunks so that memory stays bounded.
final class DaemonExternalObjects: ExternalObjects {
    let stores: S3Stores
    /// Bytes per ranged GET of an http(s) download.
    let chunkSize: Int

    init(stores: S3Stores, chunkSize: Int = 8 << 20) {
        self.stores = stores
        self.chunkSize = chunkSize
    }

    func s3Store(forBucket bucket: String) throws -> any ObjectStore {
        try stores.store(forBucket: bucket)
    }

    func download(_ url: String, into sink: any ByteSink) throws -> UInt64 {
        var offset: UInt64 = 0
        var validator: String?
        while true {
            var headers = [("Range", "bytes=\(offset)-\(offset + UInt64(chunkSize) - 1)")]
            if let validator { headers.append(("If-Range", validator)) }
            let response: CurlSession.Response
            do {
                response = try stores.session.perform(CurlSession.Request(method: "GET", url: url, headers: headers,
                                                                          expectedResponseBytes: chunkSize))
            } catch {
                throw JobStoreError(.unavailable, "GET \(url): \(error)")
            }
            switch response.status {
            case 200 where offset == 0:  // no ranges from this server: the whole body at once
                try response.body.withUnsafeBytes { try sink.write($0) }
                return UInt64(response.body.count)
            case 200:
                throw JobStoreError(.aborted, "GET \(url): the resource changed during the download")
            case 206:
                try response.body.withUnsafeBytes { try sink.write($0) }
                offset += UInt64(response.body.count)
                validator = validator ?? response.headers["etag"] ?? response.headers["last-modified"]
                guard let range = response.headers["content-range"], let slash = range.lastIndex(of: "/"),
                      let total = UInt64(range[range.index(after: slash)...]) else {
                    throw JobStoreError(.internal, "GET \(url): a partial answer without a usable Content-Range")
                }
                if offset >= total || response.body.isEmpty { return offset }
            case 416 where offset == 0:
                return 0  // an empty resource has no byte 0
            case 404, 410:
                throw JobStoreError(.notFound, "GET \(url): HTTP \(response.status)")
            case 401, 403:
                throw JobStoreError(.permissionDenied, "GET \(url): HTTP \(response.status)")
            default:
                throw JobStoreError(.unavailable, "GET \(url): HTTP \(response.status)")
            }
        }
    }
}
