import Synchronization

/// Job descriptions this daemon lately wrote to or read from a remote store, with their ETags.
///
/// Toil reads a job soon after it is written (the leader creates it, the worker loads and
/// updates it, the leader loads it again), so a load revalidates a remembered body with a
/// conditional GET, whose 304 carries no body, rather than downloading it again. An entry is
/// never served without asking the store (another node may have written since). Bounded in
/// bytes; the least recently used entries go first, a quarter at a time.
final class JobBodyCache: Sendable {
    struct Entry: Sendable {
        let etag: String
        let body: [UInt8]
        /// Digest of the SSE-C key the body was written or read with (nil: none): an entry is
        /// offered only to a load with the same key.
        let keyDigest: String?
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacityBytes: Int
    /// Larger bodies are not kept (a rare, huge job description would evict many small ones).
    static let maxEntryBytes = 1 << 20

    init(capacityBytes: Int = 16 << 20) {
        self.capacityBytes = capacityBytes
    }

    func lookup(_ key: String, keyDigest: String?) -> (etag: String, body: [UInt8])? {
        state.withLock { s in
            guard var entry = s.entries[key], entry.keyDigest == keyDigest else { return nil }
            s.clock += 1
            entry.lastUse = s.clock
            s.entries[key] = entry
            return (entry.etag, entry.body)
        }
    }

    func remember(_ key: String, etag: String, body: [UInt8], keyDigest: String?) {
        guard !etag.isEmpty, body.count <= Self.maxEntryBytes, body.count <= capacityBytes else {
            forget(key)
            return
        }
        state.withLock { s in
            if let old = s.entries[key] { s.bytes -= old.body.count }
            s.clock += 1
            s.entries[key] = Entry(etag: etag, body: body, keyDigest: keyDigest, lastUse: s.clock)
            s.bytes += body.count
            if s.bytes > capacityBytes { Self.evict(&s, target: capacityBytes * 3 / 4) }
        }
    }

    func forget(_ key: String) {
        state.withLock { s in
            if let old = s.entries.removeValue(forKey: key) { s.bytes -= old.body.count }
        }
    }

    func forgetAll() {
        state.withLock { s in
            s.entries.removeAll()
            s.bytes = 0
        }
    }

    var byteCount: Int { state.withLock { $0.bytes } }
    var count: Int { state.withLock { $0.entries.count } }

    private static func evict(_ s: inout State, target: Int) {
        for (key, entry) in s.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            guard s.bytes > target else { return }
            s.entries[key] = nil
            s.bytes -= entry.body.count
        }
    }
}
