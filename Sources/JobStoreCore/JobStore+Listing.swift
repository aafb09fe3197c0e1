import Foundation
import ObjectStore

/// Listing a store's files, for operators (`jobstore files`). Toil never lists files, so this
/// follows the bucket layout rather than any Toil call: flat files are `files-flat/<id>/<basename>`,
/// hinted files `files/<hints>/files/[<n>/]<basename>` beside their tombstones, and a job's
/// files (those deleted with it) are its `job-associations/<job>.<file id>` markers.
extension JobStore {
    /// One page of a store's files (ListFiles): a listing of a large store is paged so that
    /// no call holds the whole bucket in memory.
    public struct FileListing: Sendable {
        public var files: [(id: String, size: UInt64)]
        public var nextPageToken: String
    }

    /// One page of files in key order (flat ids, then hinted ids), or of one job's files in id
    /// order. `pageToken` is the previous page's `nextPageToken`.
    public func listFiles(job: String, pageToken: String, pageSize: Int, sseKey: EncryptionKey? = nil) throws -> FileListing {
        let size = pageSize <= 0 ? 1000 : min(pageSize, 1000)
        if !job.isEmpty { return try listFiles(ofJob: job, pageToken: pageToken, size: size, sseKey: sseKey) }
        if !pageToken.isEmpty {
            guard pageToken.hasPrefix(Keys.flatFiles) || pageToken.hasPrefix(Keys.hintedFiles) else {
                throw JobStoreError(.invalidArgument, "Invalid page token \(pageToken.debugDescription).")
            }
        }
        // Flat files, then hinted ones: two listings, each of its own prefix (a listing of
        // "files" would walk every key of a local store). The token is the last key answered.
        var files: [(id: String, size: UInt64)] = []
        var startAfter = pageToken
        for prefix in [Keys.flatFiles, Keys.hintedFiles] {
            if !startAfter.isEmpty && !startAfter.hasPrefix(prefix) {
                // A token from the other prefix: the flat files were listed already.
                if prefix == Keys.flatFiles { continue }
                startAfter = ""
            }
            while files.count < size {
                let page = try mapped { try store.list(bucket, prefix: prefix, startAfter: startAfter, maxKeys: size - files.count) }
                for object in page.objects {
                    startAfter = object.key
                    if let id = Self.fileID(ofKey: object.key) { files.append((id, object.size)) }
                }
                guard page.truncated, !page.objects.isEmpty else { break }
            }
            if files.count >= size { return FileListing(files: files, nextPageToken: startAfter) }
            startAfter = ""
        }
        return FileListing(files: files, nextPageToken: "")
    }

    /// The file id a key under `files-flat/` or `files/` stores, or nil for tombstones and
    /// anything else (shared files at the root may begin with "files" too).
    static func fileID(ofKey key: String) -> String? {
        if key.hasPrefix(Keys.flatFiles) {
            let rest = key.dropFirst(Keys.flatFiles.count)
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { return nil }
            return String(rest[..<slash])
        }
        if key.hasPrefix(Keys.hintedFiles) {
            let id = String(key.dropFirst(Keys.hintedFiles.count))
            return id.contains("/\(HintTree.filesDirectory)/") ? id : nil
        }
        return nil
    }

    private func listFiles(ofJob job: String, pageToken: String, size: Int, sseKey: EncryptionKey?) throws -> FileListing {
        try Names.checkJobID(job)
        let prefix = Keys.associations(of: job)
        var files: [(id: String, size: UInt64)] = []
        var startAfter = pageToken.isEmpty ? "" : prefix + pageToken
        while files.count < size {
            let page = try mapped { try store.list(bucket, prefix: prefix, startAfter: startAfter, maxKeys: size - files.count) }
            for object in page.objects {
                startAfter = object.key
                let id = String(object.key.dropFirst(prefix.count))
                // A marker may outlive its file (deleted on its own): such files are gone.
                do {
                    files.append((id, try stat(id, sseKey: sseKey).size))
                } catch let f as JobStoreError where f.kind == .noSuchFile || f.kind == .invalidName {
                    continue
                }
            }
            guard page.truncated, !page.objects.isEmpty else { return FileListing(files: files, nextPageToken: "") }
        }
        return FileListing(files: files, nextPageToken: String(startAfter.dropFirst(prefix.count)))
    }
}
