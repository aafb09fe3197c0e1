import Foundation
import NodeCache
import ObjectStore

/// Reads and writes of job files through the node's disk cache.
///
/// Why files only: jobs are small and rewritten at every step of a workflow (a cache entry
/// would cost the same conditional request as reading them), while files are what many workers
/// on a node read again and again, and what is large.
extension JobStore {
    /// Whether an object's cache entry should be executable: the file's FileID.executable bit.
    public static func isExecutable(_ info: ObjectInfo) -> Bool {
        isExecutable(info.metadata)
    }

    /// The same, from an object's metadata (the one place that spells the bit's encoding).
    public static func isExecutable(_ metadata: [String: String]) -> Bool {
        metadata[Keys.Meta.executable] == "1"
    }

    func cacheKey(_ key: String) -> CacheKey? {
        guard cache != nil, let identity = store.cacheIdentity else { return nil }
        return CacheKey(store: identity, bucket: bucket, key: key)
    }

    /// The current bytes of `key` as a pinned cache entry, filled or revalidated with one
    /// request; nil when there is no cache or the object goes past it (read it directly then).
    /// A missing object throws `notFound` and drops its entry.
    ///
    /// An entry filled with one SSE-C key is served only to a caller holding that key (the key's
    /// digest is part of the entry), and only after S3 confirmed the caller's key with a
    /// conditional GET: a caller without the key, or with another, never gets the plaintext.
    func openCached(_ key: String, notFound: JobStoreError, sseKey: EncryptionKey?) throws -> CachedFile? {
        guard let cache, let cacheKey = cacheKey(key) else { return nil }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try openCachedOnce(cache, cacheKey, secret: sseKey, notFound: notFound)
            } catch let failure as JobStoreError
                        where (failure.code == .failedPrecondition || failure.code == .dataLoss) && attempt < Self.readAttempts {
                // The object was replaced while its parts were being fetched, or its bytes were
                // damaged on the way: read it again (nothing reached the reader yet).
                continue
            }
        }
    }

    private func openCachedOnce(_ cache: NodeCache, _ cacheKey: CacheKey, secret: EncryptionKey?,
                                notFound: JobStoreError) throws -> CachedFile? {
        let key = cacheKey.key
        do {
            return try cache.open(cacheKey, secretDigest: secret?.digest ?? "") { [store, bucket] ifNoneMatch, onInfo, sink in
                let verifying = VerifyingSink(sink)
                let options = GetOptions(ifNoneMatch: ifNoneMatch, encryptionKey: secret, onInfo: onInfo)
                do {
                    let info = try store.get(bucket, key: key, into: verifying, options: options)
                    try verifying.verify(info, what: key)
                    return .fetched(info, sha256: verifying.sha256Hex)
                } catch ObjectStoreError.notModified {
                    return .notModified
                }
            }
        } catch let error as ObjectStoreError {
            let failure = translate(error)
            if failure.code == .notFound { cache.invalidate(cacheKey) }
            throw failure.code == .notFound && failure.kind == .none ? notFound : failure
        } catch let failure as JobStoreError {
            throw failure
        } catch let error as CacheError {
            throw JobStoreError(.internal, "node cache: \(error)")
        }
    }

    /// A writer copying an upload of `key` into the cache (nil without a cache). It drops the
    /// key's current entry at once: the object is about to change.
    func cacheWriter(_ key: String, sseKey: EncryptionKey?) -> CacheWriter? {
        guard let cache, let cacheKey = cacheKey(key) else { return nil }
        return cache.writer(for: cacheKey, secretDigest: sseKey?.digest ?? "")
    }

    /// Puts a file's content, copying it into the cache as it goes.
    func putFile(_ key: String, _ source: any ByteSource, executable: Bool, createOnly: Bool = false,
                 sseKey: EncryptionKey?) throws -> ObjectInfo {
        let writer = cacheWriter(key, sseKey: sseKey)
        do {
            let body = writer.map { WriteThroughSource(source, writer: $0) } ?? source
            let info = try putChecked(key, body, metadata: executable ? [Keys.Meta.executable: "1"] : [:], createOnly: createOnly,
                                      sseKey: sseKey)
            writer?.commit(info, sha256: info.metadata[Keys.Meta.sha256] ?? "")
            return info
        } catch {
            writer?.abandon()
            throw error
        }
    }

    func invalidateCached(_ key: String) {
        if let cache, let cacheKey = cacheKey(key) { cache.invalidate(cacheKey) }
    }
}
