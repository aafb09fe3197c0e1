/// Everything the cache's lock guards.
struct CacheState {
    var entries: [CacheKey: CacheEntry] = [:]
    var doomed: [CacheEntry] = []
    var flights: [CacheKey: Flight] = [:]
    var clock: UInt64 = 0
    var usedBytes: UInt64 = 0
    var reservedBytes: UInt64 = 0
    var statistics = CacheStatistics()
    /// Fills and writes in progress, and the epoch of each key's last change while any run:
    /// a fill that started before a change to its key must not publish over it.
    private var epoch: UInt64 = 0
    private var changes: [CacheKey: UInt64] = [:]
    private var operations = 0

    mutating func beginOperation() -> UInt64 {
        operations += 1
        return epoch
    }

    mutating func endOperation() {
        operations -= 1
        if operations == 0 { changes.removeAll() }
    }

    mutating func changed(_ key: CacheKey) {
        guard operations > 0 else { return }
        epoch += 1
        changes[key] = epoch
    }

    func isStale(_ key: CacheKey, since: UInt64) -> Bool {
        (changes[key] ?? 0) > since
    }
}
