import Foundation

/// One entry in memory. Mutable fields change under the cache's lock.
final class CacheEntry: @unchecked Sendable {
    let name: String
    let manifest: CacheManifest
    var lastUsed: UInt64 = 0
    /// Wall-clock time the manifest's mtime was last set (LRU order across restarts).
    var lastTouched: Double = 0
    /// Monotonic time of the last revalidation (or fill).
    var validatedAt: Double = -Double.infinity
    var pins = 0
    var leaseUntil: Double = 0
    /// False after an unclean stop until the data was checked against its checksum.
    var verified: Bool
    /// Out of the index; its files go when the last reader lets go.
    var doomed = false

    init(name: String, manifest: CacheManifest, verified: Bool) {
        self.name = name
        self.manifest = manifest
        self.verified = verified
    }
}
