import Foundation

/// The cache's space (reservations before bytes are written, LRU eviction under the cap and
/// above the filesystem's free floor) and its figures.
extension NodeCache {
    /// Reserves `bytes` for a fill, evicting LRU entries no reader holds; throws CacheBypass
    /// when even that leaves too little room. Takes the lock.
    func reserve(_ bytes: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        guard makeRoom(bytes) else {
            throw CacheBypass(reason: "no room for \(bytes) more bytes (cap \(configuration.capacity), \(state.usedBytes) used, \(state.reservedBytes) reserved)")
        }
        state.reservedBytes += bytes
    }

    func unreserve(_ bytes: UInt64) {
        condition.lock()
        state.reservedBytes -= min(bytes, state.reservedBytes)
        condition.unlock()
    }

    /// Evicts until `bytes` more fit under the cap and above the free-space floor.
    func makeRoom(_ bytes: UInt64) -> Bool {
        for entry in state.doomed { reclaimIfUnused(entry) }
        func fits() -> Bool {
            guard state.usedBytes + state.reservedBytes + bytes <= configuration.capacity else { return false }
            guard configuration.minFreeFraction > 0 else { return true }
            let (free, total) = directory.space()
            let floor = UInt64(Double(total) * configuration.minFreeFraction)
            return free >= floor && free - floor >= bytes + state.reservedBytes
        }
        if fits() { return true }
        let now = Self.now
        let candidates = state.entries.values
            .filter { $0.pins == 0 && $0.leaseUntil <= now }
            .sorted { $0.lastUsed < $1.lastUsed }
        for entry in candidates {
            state.statistics.evictions += 1
            logger.debug("cache evicts \(entry.manifest.key) (\(entry.manifest.size) bytes)")
            drop(entry)
            if fits() { return true }
        }
        return false
    }

    // MARK: figures

    func served(_ bytes: UInt64) { count { $0.bytesFromCache += bytes } }

    func count(_ update: (inout CacheStatistics) -> Void) {
        condition.lock()
        update(&state.statistics)
        condition.unlock()
    }

    func log(_ message: String) { logger.debug("\(message)") }

    public var statistics: CacheStatistics {
        condition.lock()
        defer { condition.unlock() }
        var s = state.statistics
        s.capacityBytes = configuration.capacity
        s.sizeBytes = state.usedBytes
        s.reservedBytes = state.reservedBytes
        s.entries = UInt64(state.entries.count)
        s.pinnedEntries = UInt64(state.entries.values.filter { $0.pins > 0 }.count)
        return s
    }
}
