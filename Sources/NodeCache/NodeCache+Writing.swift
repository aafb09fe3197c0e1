import Foundation
import ObjectStore

/// Writes through the cache and invalidations: an upload through this daemon replaces the
/// entry of its key, a delete or destroy drops it.
extension NodeCache {
    /// A writer that copies an upload of `key` into the cache; nil when the cache cannot take
    /// `expectedSize` bytes. The current entry is dropped at once (the object is changing).
    public func writer(for key: CacheKey, secretDigest: String = "", expectedSize: UInt64? = nil) -> CacheWriter? {
        invalidate(key)
        if let size = expectedSize, size > configuration.capacity {
            count { $0.bypassed += 1 }
            return nil
        }
        let pending = PendingEntry(cache: self)
        if let size = expectedSize, (try? pending.reserve(total: size)) == nil {
            pending.discard()
            count { $0.bypassed += 1 }
            return nil
        }
        condition.lock()
        let since = state.beginOperation()
        condition.unlock()
        return CacheWriter(cache: self, key: key, secretDigest: secretDigest, epoch: since, pending: pending)
    }

    func publishWrite(_ pending: PendingEntry, key: CacheKey, info: ObjectInfo, sha256: String, secretDigest: String, since: UInt64) {
        let manifest = CacheManifest(key: key, etag: info.etag, size: info.size, sha256: sha256, metadata: info.metadata,
                                     lastModified: info.lastModified, secretDigest: secretDigest, filled: Date().timeIntervalSince1970)
        if publish(pending, manifest: manifest, since: since, bumping: true) != nil {
            count { $0.writtenThrough += 1 }
            logger.debug("cache wrote through \(key) (\(info.size) bytes, \(info.etag))")
        }
        finishedOperation()
    }

    func finishedOperation() {
        condition.lock()
        state.endOperation()
        condition.unlock()
    }

    /// Drops the entry of `key` (the object was deleted or is being replaced through this daemon).
    public func invalidate(_ key: CacheKey) {
        condition.lock()
        defer { condition.unlock() }
        state.changed(key)
        if let entry = state.entries[key] {
            state.statistics.invalidations += 1
            drop(entry)
            logger.debug("cache invalidated \(key)")
        }
    }

    /// Drops every entry of one bucket (the store was destroyed).
    public func invalidate(store: String, bucket: String) {
        condition.lock()
        defer { condition.unlock() }
        for (key, entry) in state.entries where key.store == store && key.bucket == bucket {
            state.changed(key)
            state.statistics.invalidations += 1
            drop(entry)
        }
    }
}
