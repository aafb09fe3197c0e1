import Foundation
import Logging
import ObjectStore
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// The node's disk cache of objects, shared by every worker through the daemon.
///
/// Why it is built this way:
/// - **One download per object per node.** Concurrent readers of an object the cache lacks
///   share one fill (single-flight); they wait for it and get its error if it fails (the next
///   read tries again).
/// - **Always current.** Every read revalidates its entry with one conditional request
///   (If-None-Match; a 304 serves the entry), unless the operator trusts entries for
///   `trustSeconds`. Writes and deletes through this daemon replace or drop the entry at once.
/// - **Bounded.** Space is reserved before bytes are written, LRU entries that no reader holds
///   are evicted to make room, and a floor of free space on the filesystem is kept. An object
///   that cannot fit goes past the cache.
/// - **Persistent and crash-safe.** Entries are published by rename (data, then manifest); the
///   manifests are the index, reloaded at start-up. After a crash every entry's checksum is
///   checked before it is first served.
public final class NodeCache: @unchecked Sendable {
    public let configuration: Configuration
    let directory: CacheDirectory
    let logger: Logger
    let condition = NSCondition()
    var state = CacheState()

    /// Opens (or creates) the cache directory and loads its entries. Throws when the directory
    /// cannot be made or another daemon holds it.
    public init(_ configuration: Configuration, logger: Logger = Logger(label: "jobstored.cache")) throws {
        self.configuration = configuration
        self.logger = logger
        directory = try CacheDirectory(root: configuration.directory, lockWait: configuration.lockWaitSeconds)
        let clean = directory.takeCleanMarker()
        for (name, manifest, used) in directory.load().sorted(by: { $0.lastUsed < $1.lastUsed }) {
            let entry = CacheEntry(name: name, manifest: manifest, verified: clean)
            state.clock += 1
            entry.lastUsed = state.clock
            entry.lastTouched = used
            state.entries[manifest.key] = entry
            state.usedBytes += manifest.size
        }
        state.statistics.directory = configuration.directory
        logger.info("cache \(configuration.directory): \(state.entries.count) entries, \(state.usedBytes) bytes\(clean ? "" : " (after an unclean stop: each entry is checked before its first use)")")
        // Over the cap (it was lowered): evict down to it now.
        if state.usedBytes > configuration.capacity {
            condition.lock()
            _ = makeRoom(0)
            condition.unlock()
        }
    }

    /// Marks an orderly stop: the next start trusts the entries without re-checking them.
    /// Call it once no read or write is in progress.
    public func close() {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return }
        closed = true
        directory.writeCleanMarker()
        directory.unlock()
    }

    private var closed = false

    /// Without close() (as after a crash) the next start checks every entry before using it.
    deinit {
        if !closed { directory.unlock() }
    }

    // MARK: reading

    /// The current bytes of `key` as a pinned entry, revalidated (or filled) through `fetch`;
    /// nil when the object will not be cached (the caller reads it from the store itself).
    /// `secretDigest` names the SSE-C key the reader holds: an entry read with another key is
    /// not served without the store checking the reader's key.
    public func open(_ key: CacheKey, secretDigest: String = "", fetch: CacheFetch) throws -> CachedFile? {
        while true {
            do {
                return try openOnce(key, secretDigest: secretDigest, fetch: fetch)
            } catch is ReadAgain {
                continue
            }
        }
    }

    /// A write or delete through this daemon overtook a download: the reader must read again.
    struct ReadAgain: Error {}

    private func openOnce(_ key: CacheKey, secretDigest: String, fetch: CacheFetch) throws -> CachedFile? {
        condition.lock()
        var waited = false
        while let flight = state.flights[key] {
            if !waited { state.statistics.joined += 1; waited = true }
            while !flight.done { condition.wait() }
            switch flight.outcome {
            case .failure(let error) where error is ReadAgain:
                continue
            case .failure(let error) where error is CacheBypass:
                condition.unlock()
                return nil
            case .failure(let error):
                condition.unlock()
                throw error
            default:
                break
            }
            // The fill published the entry (unless a write replaced it meanwhile). Its request
            // was sent before this read began, so an update made elsewhere in between could
            // be missing: this read checks with a conditional request of its own (a 304 costs
            // no bytes) unless the entry is within the trust window.
            if let entry = state.entries[key], entry.manifest.secretDigest == secretDigest, entry.verified {
                if isTrusted(entry) {
                    let file: CachedFile
                    do { file = try pin(entry, hit: true) } catch { condition.unlock(); throw error }
                    condition.unlock()
                    return file
                }
                return try fillReleasingLock(key, existing: entry, secretDigest: secretDigest, leading: nil, fetch: fetch)
            }
        }
        let existing = state.entries[key].flatMap { $0.manifest.secretDigest == secretDigest ? $0 : nil }
        if let entry = existing, entry.verified, isTrusted(entry) {
            let file: CachedFile
            do { file = try pin(entry, hit: true) } catch { condition.unlock(); throw error }
            condition.unlock()
            logger.debug("cache hit (trusted) \(key)")
            return file
        }
        let flight = Flight()
        state.flights[key] = flight
        return try fillReleasingLock(key, existing: existing, secretDigest: secretDigest, leading: flight, fetch: fetch)
    }

    /// Whether the operator's trust window spares this entry its revalidation. Lock held.
    private func isTrusted(_ entry: CacheEntry) -> Bool {
        configuration.trustSeconds > 0 && Self.now - entry.validatedAt < configuration.trustSeconds
    }

    /// Fills or revalidates outside the lock, holding `existing` pinned meanwhile, and, when this
    /// read leads `flight`, hands its outcome to the waiters. Called with the lock held; returns
    /// with it released. nil: the object goes past the cache.
    private func fillReleasingLock(_ key: CacheKey, existing: CacheEntry?, secretDigest: String, leading flight: Flight?,
                                   fetch: CacheFetch) throws -> CachedFile? {
        let since = state.beginOperation()
        existing?.pins += 1
        condition.unlock()

        let outcome = Result { try fill(key, existing: existing, secretDigest: secretDigest, since: since, fetch: fetch) }

        condition.lock()
        if let entry = existing { entry.pins -= 1; reclaimIfUnused(entry) }
        if let flight {
            flight.done = true
            flight.outcome = outcome.map { _ in () }
            state.flights[key] = nil
            condition.broadcast()
        }
        state.endOperation()
        condition.unlock()
        do {
            return try outcome.get()
        } catch is CacheBypass {
            return nil
        }
    }

    /// Revalidates or downloads, then pins and opens the entry. Runs outside the lock.
    private func fill(_ key: CacheKey, existing: CacheEntry?, secretDigest: String, since: UInt64,
                      fetch: CacheFetch) throws -> CachedFile? {
        var current = existing
        if let entry = current, !entry.verified {
            if verify(entry) {
                entry.verified = true
            } else {
                condition.lock()
                state.statistics.corrupt += 1
                drop(entry)
                condition.unlock()
                logger.warning("cache entry \(key) did not match its checksum; dropped")
                current = nil
            }
        }
        let pending = PendingEntry(cache: self)
        let capacity = configuration.capacity
        let onInfo: @Sendable (ObjectInfo) throws -> Void = { info in
            guard info.size <= capacity else {
                throw CacheBypass(reason: "\(info.size) bytes is more than the cache's \(capacity)")
            }
            try pending.reserve(total: info.size)
        }
        let outcome: FetchOutcome
        do {
            outcome = try fetch(current?.manifest.etag, onInfo, CacheFillSink(pending))
        } catch let bypass as CacheBypass {
            pending.discard()
            count { $0.bypassed += 1 }
            logger.debug("cache bypass \(key): \(bypass.reason)")
            throw bypass
        } catch {
            pending.discard()
            throw error
        }
        switch outcome {
        case .notModified:
            pending.discard()
            guard let entry = current else { throw CacheError("the store answered 'not modified' to an unconditional read of \(key)") }
            condition.lock()
            defer { condition.unlock() }
            state.statistics.revalidations += 1
            // Replaced or deleted through this daemon while the request was out: read again.
            guard !entry.doomed else { throw ReadAgain() }
            entry.validatedAt = Self.now
            logger.debug("cache revalidated \(key) (\(entry.manifest.etag))")
            return try pin(entry, hit: true)
        case .fetched(let info, let sha256):
            let manifest = CacheManifest(key: key, etag: info.etag, size: info.size, sha256: sha256, metadata: info.metadata,
                                         lastModified: info.lastModified, secretDigest: secretDigest,
                                         filled: Date().timeIntervalSince1970)
            guard pending.written == info.size else {
                pending.discard()
                throw ObjectStoreError.dataLoss("\(key): the store sent \(pending.written) bytes of \(info.size)")
            }
            count { $0.misses += 1; $0.bytesFromStore += info.size }
            logger.debug("cache filled \(key) (\(info.size) bytes, \(info.etag))")
            // Published and pinned at once: no eviction can come in between.
            guard let (_, file) = publish(pending, manifest: manifest, since: since, pinning: true), let file else {
                throw ReadAgain()
            }
            return file
        }
    }

    /// Whether an entry's data still has its checksum (read once after an unclean stop).
    private func verify(_ entry: CacheEntry) -> Bool {
        let fd = Glibc.open(directory.dataPath(entry.name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        let digest = SHA256Digest()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: UInt64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in SystemCall.retryingInterrupts { read(fd, raw.baseAddress, raw.count) } }
            if n < 0 { return false }
            if n == 0 { break }
            buffer.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            total += UInt64(n)
        }
        return total == entry.manifest.size && digest.finalizeHex() == entry.manifest.sha256
    }


    // MARK: entries (callers hold the lock unless noted)

    /// Moves a finished fill into place as the entry of its key, replacing the old one, unless
    /// the key changed since `since` (then the fill is dropped and nil returned). Takes the lock.
    func publish(_ pending: PendingEntry, manifest: CacheManifest, since: UInt64, bumping: Bool = false,
                         pinning: Bool = false) -> (CacheEntry, CachedFile?)? {
        let key = manifest.key
        let name = "\(key.fileStem)-\(UUID().uuidString.lowercased().prefix(13))"
        let finished: (path: String, reserved: UInt64)
        do {
            finished = try pending.finish()
        } catch {
            pending.discard()
            return nil
        }
        condition.lock()
        defer { condition.unlock() }
        state.reservedBytes -= min(finished.reserved, state.reservedBytes)
        guard !state.isStale(key, since: since) else {
            unlink(finished.path)
            return nil
        }
        do {
            try directory.publish(temporary: finished.path, as: name, manifest: manifest,
                                  executable: configuration.isExecutable(manifest.info))
        } catch {
            logger.warning("cache: \(error)")
            unlink(finished.path)
            return nil
        }
        if bumping { state.changed(key) }
        if let old = state.entries[key] { drop(old) }
        let entry = CacheEntry(name: name, manifest: manifest, verified: true)
        entry.validatedAt = Self.now
        state.clock += 1
        entry.lastUsed = state.clock
        entry.lastTouched = Date().timeIntervalSince1970
        state.entries[key] = entry
        state.usedBytes += manifest.size
        return (entry, pinning ? try? pin(entry, hit: false) : nil)
    }

    /// Opens and pins an entry's data. Data gone from disk (the directory wiped or pruned under
    /// the daemon) drops the entry and throws ReadAgain: the read fetches the object again.
    private func pin(_ entry: CacheEntry, hit: Bool) throws -> CachedFile {
        let path = directory.dataPath(entry.name)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let cause = errno
            guard cause == ENOENT else { throw ObjectStoreError.io("cannot open cache entry \(path): \(String(cString: strerror(cause)))") }
            state.statistics.corrupt += 1
            drop(entry)
            logger.warning("cache entry \(entry.manifest.key) is gone from \(directory.entries) (removed under the daemon); reading it from the store again")
            throw ReadAgain()
        }
        entry.pins += 1
        state.clock += 1
        entry.lastUsed = state.clock
        if hit { state.statistics.hits += 1 }
        let wall = Date().timeIntervalSince1970
        if wall - entry.lastTouched > 60 {
            entry.lastTouched = wall
            directory.touch(entry.name)
        }
        return CachedFile(entry: entry, path: path, fd: fd, cache: self)
    }

    func unpin(_ entry: CacheEntry, lease: Double) {
        condition.lock()
        defer { condition.unlock() }
        entry.pins -= 1
        if lease > 0 { entry.leaseUntil = max(entry.leaseUntil, Self.now + lease) }
        reclaimIfUnused(entry)
    }

    /// Removes an entry from the index; its files go when no reader holds it.
    func drop(_ entry: CacheEntry) {
        if state.entries[entry.manifest.key] === entry { state.entries[entry.manifest.key] = nil }
        guard !entry.doomed else { return }
        entry.doomed = true
        state.doomed.append(entry)
        reclaimIfUnused(entry)
    }

    func reclaimIfUnused(_ entry: CacheEntry) {
        guard entry.doomed, entry.pins == 0, entry.leaseUntil <= Self.now else { return }
        directory.remove(entry.name)
        state.usedBytes -= entry.manifest.size
        state.doomed.removeAll { $0 === entry }
    }

    static var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
