import BuildVersion
import Foundation
import NodeCache
import ObjectStore
import Synchronization

/// One job store with Toil 9.6's semantics (AWSJobStore) over any ObjectStore: jobs, files,
/// shared files and logs, in Toil's bucket layout. Thread-safe; every worker on the node
/// shares one instance per locator.
public final class JobStore: @unchecked Sendable {
    public static let version = ReleaseVersion.current

    public let locator: Locator
    let store: any ObjectStore
    /// The node's disk cache, for stores whose objects are remote (nil: read from the store).
    let cache: NodeCache?
    let bucket: String
    /// What `state` guards: the sweep clock and the remembered file keys.
    private struct State {
        /// When this daemon last swept the store's interrupted uploads (0: never).
        var lastGarbageSweep: Double = 0
        /// file id → object key; a flat id's key needs a listing to find, and never changes.
        var fileKeys: [String: String] = [:]
    }
    private let state = Mutex(State())
    /// What `logMemory` guards: what this daemon's polls of the logs last saw and wrote.
    struct LogMemory {
        /// The log window this daemon last wrote to the `.jobstored` object, with the token the
        /// marker's metadata named it by: while the marker still names it, the window need not be
        /// read back.
        var lastLogWindow: (token: String, state: LogState)?
        /// The marker and window as this daemon's last poll of the logs left them:
        /// a poll that lists nothing unread against them costs no GET of the marker.
        var lastLogSeen: LogState?
    }
    /// Held across a whole poll of the logs (requests included): polls of one store run one at a time.
    let logMemory = Mutex(LogMemory())
    /// Job bodies kept for revalidation (remote stores only: a local read is as cheap).
    let jobBodies: JobBodyCache?
    /// Logs written up to this many seconds behind the newest log read are still delivered.
    public var logClockSkewTolerance: Double = 3600

    public init(locator: Locator, store: any ObjectStore, cache: NodeCache? = nil) {
        self.locator = locator
        self.store = store
        self.cache = store.cacheIdentity == nil ? nil : cache
        self.bucket = locator.bucket
        self.jobBodies = store.cacheIdentity == nil ? nil : JobBodyCache()
    }

    // MARK: the store

    /// Creates the store's bucket. With `allowingCustomerKeys` (the caller holds an SSE-C key),
    /// the bucket is also made to accept SSE-C, as Toil's AWSJobStore does; when the server
    /// refuses, the new (empty) bucket is removed again and the refusal is the answer, so a
    /// retry starts from nothing rather than from a bucket that cannot take the workflow's data.
    @discardableResult
    public func initialize(allowingCustomerKeys: Bool = false) throws -> CustomerKeySetting {
        try mapped {
            if try store.bucketExists(bucket) { throw JobStoreError.jobStoreExists(locator.description) }
            try store.createBucket(bucket)
            guard allowingCustomerKeys else { return .notNeeded }
            do {
                return try store.allowCustomerKeys(bucket)
            } catch {
                try? store.destroyBucket(bucket)
                throw error
            }
        }
    }

    public func resume() throws {
        try mapped {
            // Every Toil worker process resumes the store before its first call; a store this
            // node has just seen answer need not be asked for again. A destroy by another node
            // since is met by the worker's next call (NoSuchBucket: noSuchJobStore), as it would
            // be had it happened just after the check.
            guard try store.bucketRecentlySeen(bucket) || store.bucketExists(bucket) else {
                throw JobStoreError.noSuchJobStore(locator.description)
            }
            // Leftovers of writes a crash interrupted (never visible to readers) go now, once per
            // `garbageInterval` on this node: every Toil worker process resumes the store, and
            // only uploads older than `garbageAge` go, so a sweep per worker finds nothing new.
            guard claimGarbageSweep() else { return }
            _ = try store.collectGarbage(bucket, olderThan: Self.garbageAge)
        }
    }

    /// Interrupted writes older than this are removed when a store is resumed; a write in
    /// progress on another node is never that old.
    static let garbageAge: Double = 6 * 3600
    /// The least time between two sweeps of one store by this daemon.
    static let garbageInterval: Double = 600

    /// True when this resume should sweep (none in the last `garbageInterval` seconds).
    private func claimGarbageSweep() -> Bool {
        let now = Date().timeIntervalSince1970
        return state.withLock { s in
            guard now - s.lastGarbageSweep >= Self.garbageInterval else { return false }
            s.lastGarbageSweep = now
            return true
        }
    }

    public func destroy() throws {
        try mapped { try store.destroyBucket(bucket) }
        jobBodies?.forgetAll()
        logMemory.withLock { memory in
            memory.lastLogWindow = nil
            memory.lastLogSeen = nil
        }
        if let cache, let identity = store.cacheIdentity { cache.invalidate(store: identity, bucket: bucket) }
        state.withLock { $0.fileKeys = [:] }
    }

    public func exists() throws -> Bool {
        try mapped { try store.bucketExists(bucket) }
    }

    // MARK: jobs

    public func assignJobID() -> String {
        UUID().uuidString.lowercased()
    }

    /// Stores a job's (opaque) description; create and update are the same write, as in Toil.
    /// `sseKey`, on this and every data operation, is the caller's SSE-C key (Toil's
    /// config.sseKey as the caller read it just now); nil stores and reads in the clear.
    public func writeJob(_ id: String, body: [UInt8], sseKey: EncryptionKey? = nil) throws {
        try Names.checkJobID(id)
        let key = Keys.job(id)
        guard let jobBodies else {
            try putChecked(key, MemorySource(body), sseKey: sseKey)
            return
        }
        jobBodies.forget(key)  // whatever happens to this write, the old body is no longer current
        let info = try putChecked(key, MemorySource(body), sseKey: sseKey)
        jobBodies.remember(key, etag: info.etag, body: body, keyDigest: sseKey?.digest)
    }

    public func jobExists(_ id: String, sseKey: EncryptionKey? = nil) throws -> Bool {
        try Names.checkJobID(id)
        return try mapped { try store.head(bucket, key: Keys.job(id), options: GetOptions(encryptionKey: sseKey)) != nil }
    }

    /// A body remembered in memory is answered only to a caller holding the key it was read or
    /// written with (its digest is part of the lookup), after S3 confirmed it with that key.
    public func loadJob(_ id: String, sseKey: EncryptionKey? = nil) throws -> [UInt8] {
        try Names.checkJobID(id)
        let key = Keys.job(id)
        let sink = MemorySink()
        guard let jobBodies else {
            try getVerified(key, into: sink, notFound: .noSuchJob(id), sseKey: sseKey)
            return sink.bytes
        }
        let digest = sseKey?.digest
        let known = jobBodies.lookup(key, keyDigest: digest)
        do {
            let info = try getVerified(key, into: sink, notFound: .noSuchJob(id), sseKey: sseKey, ifNoneMatch: known?.etag)
            jobBodies.remember(key, etag: info.etag, body: sink.bytes, keyDigest: digest)
            return sink.bytes
        } catch is StillCurrent {
            return known!.body
        } catch let failure as JobStoreError where failure.kind == .noSuchJob {
            jobBodies.forget(key)
            throw failure
        }
    }

    /// Deletes the job and every file associated with it (written with cleanup); idempotent.
    /// The job, the files and the associations go in one DeleteObjects
    /// where it can: Toil deletes every job (with the file holding its pickled body) as it
    /// finishes, and three requests per job were a sixth of a workflow's (bench --cluster).
    /// A hinted file is deleted by itself first, as its tombstone must precede its deletion.
    public func deleteJob(_ id: String, sseKey: EncryptionKey? = nil) throws {
        try Names.checkJobID(id)
        jobBodies?.forget(Keys.job(id))
        let prefix = Keys.associations(of: id)
        var associations: [String] = []
        try forEachKey(prefix: prefix) { associations.append($0.key) }
        var keys = [Keys.job(id)]
        var fileKeys: [(id: String, key: String)] = []
        for association in associations {
            let file = String(association.dropFirst(prefix.count))
            if file.contains("/") {
                try deleteFile(file, sseKey: sseKey)
                continue
            }
            do {
                fileKeys.append((file, try findFileKey(file, sseKey: sseKey)))
            } catch let f as JobStoreError where f.kind == .noSuchFile {}
        }
        keys += fileKeys.map(\.key) + associations
        try mapped { try store.delete(bucket, keys: keys) }
        for (file, key) in fileKeys {
            invalidateCached(key)
            rememberFileKey(file, nil)
        }
    }

    /// One page of a store's jobs (ListJobs, Toil's `jobs()`), with their bodies when asked:
    /// a large store is listed in pages, never in one answer.
    public struct JobListing: Sendable {
        public var jobs: [(id: String, size: UInt64, body: [UInt8]?)]
        public var nextPageToken: String
    }

    /// One page of jobs in key order; `pageToken` is the last id of the previous page.
    public func listJobs(pageToken: String, pageSize: Int, includeBodies: Bool, sseKey: EncryptionKey? = nil) throws -> JobListing {
        let size = pageSize <= 0 ? 1000 : min(pageSize, 1000)
        let startAfter = pageToken.isEmpty ? "" : Keys.job(pageToken)
        let page = try mapped { try store.list(bucket, prefix: Keys.jobs, startAfter: startAfter, maxKeys: size) }
        var jobs: [(id: String, size: UInt64, body: [UInt8]?)] = []
        for object in page.objects {
            let id = String(object.key.dropFirst(Keys.jobs.count))
            var body: [UInt8]?
            if includeBodies {
                // A job deleted since the listing is skipped, as Toil's jobs() does.
                do { body = try loadJob(id, sseKey: sseKey) } catch let f as JobStoreError where f.kind == .noSuchJob { continue }
            }
            jobs.append((id, object.size, body))
        }
        let next = page.truncated ? String(page.objects.last?.key.dropFirst(Keys.jobs.count) ?? "") : ""
        return JobListing(jobs: jobs, nextPageToken: next)
    }

    // MARK: plumbing shared by the operations

    func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as JobStoreError {
            throw failure
        } catch let error as ObjectStoreError {
            throw translate(error)
        }
    }

    func translate(_ error: ObjectStoreError) -> JobStoreError {
        switch error {
        case .noSuchBucket: .noSuchJobStore(locator.description)
        case .bucketAlreadyExists: .jobStoreExists(locator.description)
        case .noSuchKey(let m): JobStoreError(.notFound, m)
        case .preconditionFailed(let m): JobStoreError(.failedPrecondition, m)
        case .notModified(let m): JobStoreError(.failedPrecondition, "not modified: \(m)")
        case .invalidName(let m): .invalidName(m)
        case .badEncryptionKey(let m): .badEncryptionKey(m)
        case .dataLoss(let m): JobStoreError(.dataLoss, m)
        case .sourceFailed(let m): JobStoreError(.aborted, m)
        case .sinkFailed(let m): JobStoreError(.aborted, m)
        case .unavailable(let m): JobStoreError(.unavailable, m)
        case .permissionDenied(let m): JobStoreError(.permissionDenied, m)
        case .io(let m): JobStoreError(.internal, m)
        }
    }

    /// Puts `source` under `key` with its checksum (and `metadata`) in the object's metadata.
    @discardableResult
    func putChecked(_ key: String, _ source: any ByteSource, metadata: [String: String] = [:],
                    createOnly: Bool = false, sseKey: EncryptionKey?) throws -> ObjectInfo {
        let checksummed = ChecksummingSource(source)
        var meta = metadata
        meta[Keys.Meta.writer] = "jobstored/\(Self.version)"
        let options = PutOptions(metadata: meta, trailingMetadata: { [Keys.Meta.sha256: checksummed.finalizeHex()] },
                                 createOnly: createOnly, encryptionKey: sseKey,
                                 executable: Self.isExecutable(metadata))
        var info = try mapped { try store.put(bucket, key: key, body: checksummed, options: options) }
        // What the object now carries, whether or not the store echoed it.
        info.metadata = meta.merging(info.metadata) { ours, _ in ours }
        info.metadata[Keys.Meta.sha256] = checksummed.finalizeHex()
        return info
    }

    /// Gets `key` into `sink`, verifying size and checksum; a missing key throws `notFound`.
    /// Bytes damaged on their way (a checksum mismatch) are read again, twice at most, when the
    /// sink can take them back; damage at rest stays DATA_LOSS.
    /// With `ifNoneMatch`, throws `StillCurrent` when the object still has that ETag.
    @discardableResult
    func getVerified(_ key: String, into sink: any ByteSink, notFound: JobStoreError, sseKey: EncryptionKey?,
                     ifNoneMatch: String? = nil) throws -> ObjectInfo {
        // A file descriptor or memory takes bytes back; a stream to a client is held back.
        let holding = sink is FileDescriptorSink || sink is MemorySink ? nil : HoldBackSink(sink)
        let target = holding ?? sink
        var attempt = 0
        while true {
            attempt += 1
            let verifying = VerifyingSink(target)
            do {
                let options = GetOptions(ifNoneMatch: ifNoneMatch, encryptionKey: sseKey)
                let info = try mapped {
                    do {
                        return try store.get(bucket, key: key, into: verifying, options: options)
                    } catch ObjectStoreError.notModified {
                        throw StillCurrent()
                    }
                }
                try verifying.verify(info, what: key)
                try holding?.release()
                return info
            } catch let failure as JobStoreError where failure.code == .notFound && failure.kind == .none {
                throw notFound
            } catch let failure as JobStoreError where failure.code == .dataLoss && attempt < Self.readAttempts && target.rewind() {
                continue
            }
        }
    }

    /// A conditional get found the object unchanged: the caller's copy is current.
    struct StillCurrent: Error {}

    /// Reads of one object whose bytes failed their checksum, before DATA_LOSS is final.
    static let readAttempts = 3

    /// Calls `body` for every object under `prefix`, page by page.
    func forEachKey(prefix: String, _ body: (ObjectInfo) throws -> Void) throws {
        var startAfter = ""
        while true {
            let page = try mapped { try store.list(bucket, prefix: prefix, startAfter: startAfter, maxKeys: 1000) }
            for object in page.objects { try body(object) }
            guard page.truncated, let last = page.objects.last else { return }
            startAfter = last.key
        }
    }

    func cachedFileKey(_ id: String) -> String? {
        state.withLock { $0.fileKeys[id] }
    }

    func rememberFileKey(_ id: String, _ key: String?) {
        state.withLock { s in
            if s.fileKeys.count > 100_000 { s.fileKeys.removeAll() }
            s.fileKeys[id] = key
        }
    }
}
