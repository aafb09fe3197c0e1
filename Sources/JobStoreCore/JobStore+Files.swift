import Foundation
import ObjectStore

/// A file in the store as Toil's FileID sees it.
public struct StoredFile: Sendable, Equatable {
    public var id: String
    public var size: UInt64
    public var executable: Bool
}

/// Where a file's new content comes from and what the writer asked for.
public struct FileWriteRequest: Sendable {
    public var jobID: String = ""
    public var cleanup = false
    public var basename = ""
    public var hints: [String] = []
    public var executable = false
    /// An id claimed before by `assignFileID`; empty: allocate one now.
    public var fileID = ""

    public init(jobID: String = "", cleanup: Bool = false, basename: String = "", hints: [String] = [], executable: Bool = false,
                fileID: String = "") {
        self.fileID = fileID
        self.jobID = jobID
        self.cleanup = cleanup
        self.basename = basename
        self.hints = hints
        self.executable = executable
    }
}

extension JobStore {
    /// Writes a new file. The id is claimed first (a hinted slot, or a fresh UUID), then the
    /// content is uploaded; if the upload fails, the claim and association are undone, so an
    /// interrupted write leaves nothing behind.
    public func writeFile(_ request: FileWriteRequest, from source: any ByteSource, defaultBasename: String = "stream",
                          sseKey: EncryptionKey? = nil) throws -> StoredFile {
        let basename = request.basename.isEmpty ? defaultBasename : request.basename
        try Names.checkBasename(basename)
        if !request.jobID.isEmpty { try Names.checkJobID(request.jobID) }
        let preassigned = !request.fileID.isEmpty
        if preassigned { try Names.checkFileID(request.fileID) }
        let id = preassigned ? request.fileID : try allocateFileID(basename: basename, hints: request.hints, sseKey: sseKey)
        let key = fileKey(id, basename: basename)
        let associated = !request.jobID.isEmpty && request.cleanup
        do {
            if associated { try associate(job: request.jobID, file: id, sseKey: sseKey) }
            // A claimed flat id has no object yet: create-only, so no existing file is replaced.
            let info = try putFile(key, source, executable: request.executable, createOnly: preassigned && !id.contains("/"), sseKey: sseKey)
            rememberFileKey(id, key)
            return StoredFile(id: id, size: info.size, executable: request.executable)
        } catch {
            var undo = [key]
            if associated { undo.append(Keys.association(job: request.jobID, file: id)) }
            try? store.delete(bucket, keys: undo)
            throw error
        }
    }

    /// Claims the id of a file to be written later with `fileID` set: a UUID (nothing stored
    /// yet), or a hinted slot (claimed now, as Toil's claim_hinted_slot does).
    public func assignFileID(_ request: FileWriteRequest, defaultBasename: String = "stream", sseKey: EncryptionKey? = nil) throws -> String {
        let basename = request.basename.isEmpty ? defaultBasename : request.basename
        try Names.checkBasename(basename)
        return try allocateFileID(basename: basename, hints: request.hints, sseKey: sseKey)
    }

    /// Toil's get_empty_file_store_id: an empty file (default basename "empty").
    public func emptyFile(_ request: FileWriteRequest, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        try writeFile(request, from: MemorySource([]), defaultBasename: "empty", sseKey: sseKey)
    }

    /// Replaces a file's content atomically: readers see the old bytes until the new are whole.
    /// `executable` nil keeps the file's bit (as Toil's update_file_stream, which has no mode).
    public func updateFile(_ id: String, from source: any ByteSource, executable: Bool?, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        let key = try findFileKey(id, sseKey: sseKey)
        let executable = try executable ?? stat(id, sseKey: sseKey).executable
        let info = try putFile(key, source, executable: executable, sseKey: sseKey)
        return StoredFile(id: id, size: info.size, executable: executable)
    }

    /// Streams a file into `sink`, verifying its checksum at the end.
    public func readFile(_ id: String, into sink: any ByteSink, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        let key = try findFileKey(id, sseKey: sseKey)
        do {
            if let cached = try openCached(key, notFound: .noSuchFile(id), sseKey: sseKey) {
                defer { cached.release() }
                try mapped { try cached.copy(into: sink) }
                return StoredFile(id: id, size: cached.info.size, executable: Self.isExecutable(cached.info))
            }
            let info = try getVerified(key, into: sink, notFound: .noSuchFile(id), sseKey: sseKey)
            return StoredFile(id: id, size: info.size, executable: Self.isExecutable(info))
        } catch let f as JobStoreError where f.kind == .noSuchFile {
            rememberFileKey(id, nil)
            throw f
        }
    }

    /// A read-only local path holding the file's bytes, when the backend has one (the local
    /// store's own file) or the node cache holds it (kept from eviction for a lease, so the
    /// client can hard-link it).
    public func fileLocalPath(_ id: String, sseKey: EncryptionKey? = nil) throws -> (path: String, file: StoredFile)? {
        let key = try findFileKey(id, sseKey: sseKey)
        if cache != nil {
            guard let cached = try openCached(key, notFound: .noSuchFile(id), sseKey: sseKey) else { return nil }
            cached.release(lease: cache?.configuration.linkLeaseSeconds ?? 0)
            return (cached.path, StoredFile(id: id, size: cached.info.size, executable: Self.isExecutable(cached.info)))
        }
        guard let info = try mapped({ try store.head(bucket, key: key, options: GetOptions(encryptionKey: sseKey)) }) else {
            throw JobStoreError.noSuchFile(id)
        }
        guard let path = try mapped({ try store.localPath(bucket, key: key) }) else { return nil }
        return (path, StoredFile(id: id, size: info.size, executable: Self.isExecutable(info)))
    }

    public func fileExists(_ id: String, sseKey: EncryptionKey? = nil) throws -> Bool {
        do {
            _ = try stat(id, sseKey: sseKey)
            return true
        } catch let f as JobStoreError where f.kind == .noSuchFile {
            return false
        }
    }

    /// Size and executable bit; the SSE-C key is sent with the lookup (Toil omits it).
    public func stat(_ id: String, sseKey: EncryptionKey? = nil) throws -> StoredFile {
        let key = try findFileKey(id, sseKey: sseKey)
        guard let info = try mapped({ try store.head(bucket, key: key, options: GetOptions(encryptionKey: sseKey)) }) else {
            rememberFileKey(id, nil)
            throw JobStoreError.noSuchFile(id)
        }
        return StoredFile(id: id, size: info.size, executable: Self.isExecutable(info))
    }

    /// Deletes a file; idempotent. A hinted file's slot is tombstoned first so it is never reused.
    public func deleteFile(_ id: String, sseKey: EncryptionKey? = nil) throws {
        let key: String
        do {
            key = try findFileKey(id, sseKey: sseKey)
        } catch let f as JobStoreError where f.kind == .noSuchFile {
            return
        }
        if id.contains("/"), let tombstone = HintTree.tombstone(of: id) {
            try putIfAbsent(Keys.hintedFile(tombstone), sseKey: sseKey)
        }
        try mapped { try store.delete(bucket, keys: [key]) }
        invalidateCached(key)
        rememberFileKey(id, nil)
    }

    /// Marks a file for deletion together with a job.
    public func associate(job: String, file: String, sseKey: EncryptionKey? = nil) throws {
        try Names.checkJobID(job)
        try Names.checkFileID(file)
        try putChecked(Keys.association(job: job, file: file), MemorySource([]), sseKey: sseKey)
    }

    public func fileURL(_ id: String, expiresIn seconds: Int, sseKey: EncryptionKey? = nil) throws -> String {
        let key = try findFileKey(id, sseKey: sseKey)
        try refusePresigningEncrypted(key, what: "file \(id)")
        return try mapped { try store.url(bucket, key: key, expiresIn: seconds) }
    }

    /// S3 cannot presign a useful GET of an SSE-C object: whoever follows the URL must also send
    /// the key in headers, so the URL would either fail or invite sharing the key. Refused with
    /// FAILED_PRECONDITION rather than handing out a URL that cannot work.
    /// Whether the object is one is told by a HEAD without a key, which S3 refuses for SSE-C.
    /// Returns whether the object exists (in the clear).
    @discardableResult
    func refusePresigningEncrypted(_ key: String, what: String) throws -> Bool {
        do {
            return try mapped { try store.head(bucket, key: key, options: GetOptions()) } != nil
        } catch let f as JobStoreError where f.kind == .badEncryptionKey {
            throw JobStoreError(.failedPrecondition, "The \(what) is stored with SSE-C (a customer-provided key): S3 cannot presign "
                                  + "a URL for it that works without that key, so no public URL is given. Read it through the job store.")
        }
    }

    // MARK: ids and keys

    func fileKey(_ id: String, basename: String) -> String {
        id.contains("/") ? Keys.hintedFile(id) : Keys.flatFile(id, basename: basename)
    }

    /// The object key of an existing file: hinted ids are their own key; a flat id's key
    /// (which carries the basename) is found by listing `files-flat/<id>/`.
    func findFileKey(_ id: String, sseKey: EncryptionKey?) throws -> String {
        try Names.checkFileID(id)
        if let known = cachedFileKey(id) { return known }
        if id.contains("/") {
            let key = Keys.hintedFile(id)
            guard try mapped({ try store.head(bucket, key: key, options: GetOptions(encryptionKey: sseKey)) }) != nil else {
                throw JobStoreError.noSuchFile(id)
            }
            rememberFileKey(id, key)
            return key
        }
        let page = try mapped { try store.list(bucket, prefix: Keys.flatFilePrefix(id), startAfter: "", maxKeys: 2) }
        guard let first = page.objects.first else { throw JobStoreError.noSuchFile(id) }
        guard page.objects.count == 1 else {
            throw JobStoreError(.internal, "File ID: \(id) should be unique, but includes: \(page.objects.map(\.key))")
        }
        rememberFileKey(id, first.key)
        return first.key
    }

    /// A fresh UUID, or a claimed slot in the hint tree when the hints survive sanitizing.
    func allocateFileID(basename: String, hints: [String], sseKey: EncryptionKey?) throws -> String {
        let hintPath = HintTree.hintsString(hints)
        guard !hintPath.isEmpty else { return UUID().uuidString.lowercased() }
        var slot: Int?
        while true {
            let (path, tombstone) = HintTree.slot(hintPath, basename, slot)
            defer { slot = (slot ?? -1) + 1 }
            if try hintExists(tombstone, sseKey: sseKey) { continue }
            guard try putIfAbsent(Keys.hintedFile(path), sseKey: sseKey) else { continue }
            // A concurrent create and delete of this slot may have left a tombstone: honour it.
            if try hintExists(tombstone, sseKey: sseKey) {
                try mapped { try store.delete(bucket, keys: [Keys.hintedFile(path)]) }
                continue
            }
            return path
        }
    }

    private func hintExists(_ path: String, sseKey: EncryptionKey?) throws -> Bool {
        try mapped { try store.head(bucket, key: Keys.hintedFile(path), options: GetOptions(encryptionKey: sseKey)) != nil }
    }

    /// A create-only put of an empty object; false when the key already exists.
    @discardableResult
    func putIfAbsent(_ key: String, sseKey: EncryptionKey?) throws -> Bool {
        do {
            try putChecked(key, MemorySource([]), createOnly: true, sseKey: sseKey)
            return true
        } catch let f as JobStoreError where f.code == .failedPrecondition {
            return false
        }
    }
}
