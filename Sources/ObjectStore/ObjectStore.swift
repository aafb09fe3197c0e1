/// The storage a job store lives in: buckets of keyed objects with metadata.
///
/// Why a protocol: Toil semantics (JobStoreCore) are written once and run over S3, the embedded
/// local directory store and fault-injecting wrappers alike. Calls are blocking and thread-safe:
/// the daemon runs each call on its own thread (measured faster than async dispatch here), and
/// network backends block that thread on the I/O (S3's session is driven by its callers).
public protocol ObjectStore: Sendable {
    /// Creates `bucket`; throws `.bucketAlreadyExists` when it is there.
    func createBucket(_ bucket: String) throws
    func bucketExists(_ bucket: String) throws -> Bool
    /// True when the server showed within the last few seconds that the bucket exists, so a
    /// caller that will send a request on the bucket anyway may skip asking (see S3's
    /// BucketSightings); false when unknown. Never a substitute for `bucketExists` where the
    /// answer decides something (create, destroy).
    func bucketRecentlySeen(_ bucket: String) -> Bool
    /// Deletes the bucket and everything in it (all objects, versions and unfinished uploads).
    /// Idempotent: a missing bucket is not an error.
    func destroyBucket(_ bucket: String) throws

    /// Errors thrown by a `ByteSource` or `ByteSink` propagate unchanged; the store's own
    /// failures are `ObjectStoreError`s.
    ///
    /// Stores the bytes of `body` under `key`, atomically: readers see the old object or the
    /// complete new one, never a part. `options.metadata` is sent first;
    /// `options.trailingMetadata` is computed once the body has been consumed (a checksum).
    @discardableResult
    func put(_ bucket: String, key: String, body: any ByteSource, options: PutOptions) throws -> ObjectInfo

    /// Writes the object's bytes (or `options.range` of them) into `sink`; returns its info.
    @discardableResult
    func get(_ bucket: String, key: String, into sink: any ByteSink, options: GetOptions) throws -> ObjectInfo

    /// The object's info, or nil when there is no such key.
    func head(_ bucket: String, key: String, options: GetOptions) throws -> ObjectInfo?

    /// Keys under `prefix` in byte order, after `startAfter`, at most `maxKeys` of them.
    func list(_ bucket: String, prefix: String, startAfter: String, maxKeys: Int) throws -> ListPage

    /// Deletes the keys; missing keys are not an error. Backends batch (S3: 1000 per request).
    func delete(_ bucket: String, keys: [String]) throws

    /// A path to a read-only file holding the object's current bytes, when the backend has one
    /// (the local store does); the caller may hard-link or symlink it.
    func localPath(_ bucket: String, key: String) throws -> String?

    /// A URL by which the object can be read without this daemon, valid for `expiresIn` seconds.
    func url(_ bucket: String, key: String, expiresIn seconds: Int) throws -> String

    /// Removes what interrupted writes left behind that is older than `age` seconds (local:
    /// unpublished versions; S3: unfinished multipart uploads). Returns how many were removed.
    func collectGarbage(_ bucket: String, olderThan age: Double) throws -> Int

    /// Copies `source` (a key in `sourceStore`) to `bucket`/`key` without the bytes passing
    /// through this node, when this store can reach the source (S3 to S3 on one session).
    /// nil when it cannot: the caller streams the object instead.
    func serverSideCopy(from sourceStore: any ObjectStore, bucket sourceBucket: String, key sourceKey: String,
                        to bucket: String, key: String, options: CopyOptions) throws -> ObjectInfo?

    /// Names where this store's objects live (an S3 endpoint), for a node cache to key its
    /// entries by; nil when the store's objects are already local files and need no cache.
    var cacheIdentity: String? { get }

    /// Lets objects in `bucket` be written with customer-provided keys (SSE-C), which AWS
    /// blocks on new buckets by default. Throws when the server refuses.
    func allowCustomerKeys(_ bucket: String) throws -> CustomerKeySetting
}

/// What `allowCustomerKeys` found.
public enum CustomerKeySetting: Sendable, Equatable {
    /// The bucket now accepts SSE-C.
    case allowed
    /// Nothing to do: the store keeps no objects elsewhere (local), so it has no such switch.
    case notNeeded
    /// The server lacks the call; SSE-C works or not as the server decides. Why, for the log.
    case notSupported(String)
}

extension ObjectStore {
    public func bucketRecentlySeen(_ bucket: String) -> Bool { false }

    public func collectGarbage(_ bucket: String, olderThan age: Double) throws -> Int { 0 }

    public func serverSideCopy(from sourceStore: any ObjectStore, bucket sourceBucket: String, key sourceKey: String,
                               to bucket: String, key: String, options: CopyOptions) throws -> ObjectInfo? { nil }

    public var cacheIdentity: String? { nil }

    public func allowCustomerKeys(_ bucket: String) throws -> CustomerKeySetting { .notNeeded }
}

/// What a server-side copy carries.
public struct CopyOptions: Sendable {
    /// SSE-C key of the source object, and the key to encrypt the copy with.
    public var sourceEncryptionKey: EncryptionKey?
    public var encryptionKey: EncryptionKey?
    /// Metadata added to the source's (which the copy keeps).
    public var metadata: [String: String]

    public init(sourceEncryptionKey: EncryptionKey? = nil, encryptionKey: EncryptionKey? = nil, metadata: [String: String] = [:]) {
        self.sourceEncryptionKey = sourceEncryptionKey
        self.encryptionKey = encryptionKey
        self.metadata = metadata
    }
}

/// What a put carries besides the body.
public struct PutOptions: Sendable {
    /// User metadata (S3 `x-amz-meta-*`), lower-case names.
    public var metadata: [String: String]
    /// Metadata known only after the body has been read, such as its checksum.
    public var trailingMetadata: (@Sendable () -> [String: String])?
    /// Create only: fail with `.preconditionFailed` if the key exists (If-None-Match: *).
    public var createOnly: Bool
    /// SSE-C key for this object.
    public var encryptionKey: EncryptionKey?
    /// Backends that keep objects as files (the local store) make this one executable, so
    /// that a link to it (`localPath`) keeps the bit.
    public var executable: Bool

    public init(metadata: [String: String] = [:], trailingMetadata: (@Sendable () -> [String: String])? = nil,
                createOnly: Bool = false, encryptionKey: EncryptionKey? = nil, executable: Bool = false) {
        self.executable = executable
        self.metadata = metadata
        self.trailingMetadata = trailingMetadata
        self.createOnly = createOnly
        self.encryptionKey = encryptionKey
    }
}

/// What a get or head carries.
public struct GetOptions: Sendable {
    /// Only these bytes (an S3 Range).
    public var range: Range<UInt64>?
    /// Fail with `.preconditionFailed` unless the object's ETag is this one.
    public var ifMatch: String?
    /// Fail with `.notModified` when the object's ETag is this one (a cache revalidating).
    public var ifNoneMatch: String?
    public var encryptionKey: EncryptionKey?
    /// Called once with the object's info (size, ETag, metadata) before the first byte reaches
    /// the sink; throwing stops the get with that error. A cache reserves room here.
    public var onInfo: (@Sendable (ObjectInfo) throws -> Void)?

    public init(range: Range<UInt64>? = nil, ifMatch: String? = nil, ifNoneMatch: String? = nil,
                encryptionKey: EncryptionKey? = nil, onInfo: (@Sendable (ObjectInfo) throws -> Void)? = nil) {
        self.range = range
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
        self.encryptionKey = encryptionKey
        self.onInfo = onInfo
    }
}

/// An object as the store reports it.
public struct ObjectInfo: Sendable, Equatable {
    public var key: String
    public var size: UInt64
    /// Changes whenever the object's content does.
    public var etag: String
    public var metadata: [String: String]
    /// Seconds since 1970.
    public var lastModified: Double

    public init(key: String, size: UInt64, etag: String, metadata: [String: String] = [:], lastModified: Double = 0) {
        self.key = key
        self.size = size
        self.etag = etag
        self.metadata = metadata
        self.lastModified = lastModified
    }
}

/// One page of a listing.
public struct ListPage: Sendable {
    public var objects: [ObjectInfo]
    /// True when more keys follow the last one returned.
    public var truncated: Bool

    public init(objects: [ObjectInfo], truncated: Bool) {
        self.objects = objects
        self.truncated = truncated
    }
}

/// Why a storage call failed, in terms the job-store layer can act on.
public enum ObjectStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSuchBucket(String)
    case bucketAlreadyExists(String)
    case noSuchKey(String)
    /// A create-only put found the key, or an If-Match did not match.
    case preconditionFailed(String)
    /// An If-None-Match matched: the caller's copy is current (carries the ETag).
    case notModified(String)
    /// The key or bucket name is not acceptable to the backend.
    case invalidName(String)
    /// Missing or wrong SSE-C key.
    case badEncryptionKey(String)
    /// Bytes did not match their checksum.
    case dataLoss(String)
    /// The body source failed or was cancelled (the client went away).
    case sourceFailed(String)
    /// The sink refused bytes (the reader went away).
    case sinkFailed(String)
    /// Retryable: the backend is unreachable or overloaded.
    case unavailable(String)
    case permissionDenied(String)
    case io(String)

    public var description: String {
        switch self {
        case .noSuchBucket(let m): "no such bucket: \(m)"
        case .bucketAlreadyExists(let m): "bucket already exists: \(m)"
        case .noSuchKey(let m): "no such key: \(m)"
        case .preconditionFailed(let m): "precondition failed: \(m)"
        case .notModified(let m): "not modified: \(m)"
        case .invalidName(let m): "invalid name: \(m)"
        case .badEncryptionKey(let m): "bad encryption key: \(m)"
        case .dataLoss(let m): "data loss: \(m)"
        case .sourceFailed(let m): "upload source failed: \(m)"
        case .sinkFailed(let m): "download sink failed: \(m)"
        case .unavailable(let m): "unavailable: \(m)"
        case .permissionDenied(let m): "permission denied: \(m)"
        case .io(let m): "I/O error: \(m)"
        }
    }
}
