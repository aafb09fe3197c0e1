import ObjectStore

/// What a cache entry holds: one object of one store. The entry itself also records the ETag
/// of the version it holds, so a key maps to at most one current version.
public struct CacheKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The store's `cacheIdentity` (an S3 endpoint): bucket names are unique only per endpoint.
    public var store: String
    public var bucket: String
    public var key: String

    public init(store: String, bucket: String, key: String) {
        self.store = store
        self.bucket = bucket
        self.key = key
    }

    public var description: String { "\(bucket)/\(key)" }

    /// The stable part of the entry's file names: a digest of the key (keys may hold any bytes).
    var fileStem: String {
        let digest = SHA256Digest()
        digest.update(Array("\(store)\u{0}\(bucket)\u{0}\(key)".utf8))
        return String(digest.finalizeHex().prefix(32))
    }
}

/// What a fetch from the store answered.
public enum FetchOutcome: Sendable {
    /// The entry's ETag is still the object's (a 304).
    case notModified
    /// The store sent the object's bytes into the cache's sink, checked: its info and SHA-256.
    case fetched(ObjectInfo, sha256: String)
}

/// Downloads an object into `sink`; called by the cache when an entry is missing or must be
/// revalidated. `ifNoneMatch` is the ETag the cache holds (nil: none), `onInfo` must be passed
/// to the store's get (the cache reserves room there, or refuses an object it cannot hold).
public typealias CacheFetch = (_ ifNoneMatch: String?, _ onInfo: @escaping @Sendable (ObjectInfo) throws -> Void,
                               _ sink: any ByteSink) throws -> FetchOutcome

/// Thrown through a fetch when an object will not be cached (larger than the cache, or no room
/// left that is not pinned); the reader then streams the object straight from the store.
public struct CacheBypass: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { "not cached: \(reason)" }
}
