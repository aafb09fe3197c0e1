import Foundation
import JobStoreCore
import JobStoreWire
import ObjectStore
import Synchronization

extension JobStoreHandler {
    /// The store a request names and the caller's key for it: what every data rpc starts with.
    func keyed(_ locator: String, _ sseKey: [UInt8]) throws -> (JobStore, EncryptionKey?) {
        let store = try store(locator)
        return (store, try self.sseKey(sseKey, for: store))
    }

    /// The caller's SSE-C key from a request's `sse_key` field: nil when empty, INVALID_ARGUMENT
    /// unless exactly 32 bytes. The key travels with each call (Protos/WIRE.md), so whatever the
    /// caller's config.sseKey says now is what this call does: nothing is remembered per store
    /// or per connection, and one client's key never applies to another's calls.
    ///
    /// On a `local:` store the key is ignored, as Toil's FileJobStore ignores --sseKey (nothing
    /// leaves the node); the daemon says so once per store rather than dropping it silently.
    func sseKey(_ bytes: [UInt8], for store: JobStore) throws -> EncryptionKey? {
        if bytes.isEmpty { return nil }
        guard let key = EncryptionKey(bytes: bytes) else {
            throw JobStoreError(.invalidArgument, "sse_key must be exactly \(EncryptionKey.length) bytes (the content of Toil's "
                                + "--sseKey file, a 32-character key); this call sent \(bytes.count).")
        }
        if case .local = store.locator {
            if localKeyWarnings.firstTime(store.locator.description) {
                logger.warning("\(store.locator): SSE-C keys are ignored on local: stores (as Toil's FileJobStore ignores --sseKey)")
            }
            return nil
        }
        return key
    }
}

/// Remembers which names were already reported, so a warning is logged once, not per call.
final class OnceSet: Sendable {
    /// The names given so far.
    private let seen = Mutex<Set<String>>([])

    /// True the first time `name` is given.
    func firstTime(_ name: String) -> Bool {
        seen.withLock { $0.insert(name).inserted }
    }
}
