/// What the cache did since the daemon started, and what it holds now (Stats rpc, CLI).
public struct CacheStatistics: Sendable, Equatable {
    public var directory = ""
    public var capacityBytes: UInt64 = 0
    /// Bytes of finished entries on disk (pinned and superseded ones still in use included).
    public var sizeBytes: UInt64 = 0
    /// Bytes promised to fills in progress.
    public var reservedBytes: UInt64 = 0
    public var entries: UInt64 = 0
    public var pinnedEntries: UInt64 = 0
    /// Reads served from an entry (after a 304, or within the trust window, or after a fill).
    public var hits: UInt64 = 0
    /// Reads that had to download the object.
    public var misses: UInt64 = 0
    /// Conditional requests the store answered "not modified".
    public var revalidations: UInt64 = 0
    /// Reads that waited for another reader's download of the same object instead of their own.
    public var joined: UInt64 = 0
    public var bytesFromCache: UInt64 = 0
    public var bytesFromStore: UInt64 = 0
    /// Entries that came from writes on this node.
    public var writtenThrough: UInt64 = 0
    /// Reads and writes that went past the cache (too large, or no room that was not pinned).
    public var bypassed: UInt64 = 0
    public var evictions: UInt64 = 0
    public var invalidations: UInt64 = 0
    /// Entries dropped because their bytes no longer matched their checksum (after a crash).
    public var corrupt: UInt64 = 0

    public init() {}
}
