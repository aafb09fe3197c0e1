import Foundation
import NodeCache
import ObjectStore
import Synchronization

/// The job stores the daemon serves, one `JobStore` per locator, made on first use and
/// shared by every connection. Backends come from a factory so that S3 plugs in beside the
/// local store.
public final class StoreRegistry: Sendable {
    /// Makes the ObjectStore for a locator; throws when that kind of store is not available.
    public typealias BackendFactory = @Sendable (Locator) throws -> any ObjectStore

    /// What `state` guards: the stores made so far, by locator and by spelling.
    private struct State {
        var stores: [Locator: JobStore] = [:]
        /// The same stores by the exact text of the locators that named them: most calls find
        /// theirs here without parsing the locator again (parsing was ~3% of a small call's CPU).
        var byText: [String: JobStore] = [:]
    }
    private let state = Mutex(State())
    private let backend: BackendFactory
    /// The node's disk cache, used by stores whose objects are remote.
    public let cache: NodeCache?

    public init(backend: @escaping BackendFactory, cache: NodeCache? = nil) {
        self.backend = backend
        self.cache = cache
    }

    /// A factory serving `local:` stores from one shared LocalObjectStore and refusing others.
    public static func localOnly(durable: Bool = true) -> BackendFactory {
        let local = LocalObjectStore(durable: durable)
        return { locator in
            switch locator {
            case .local: return local
            case .aws:
                throw JobStoreError(.unavailable, "This daemon has no S3 backend configured for \(locator).")
            }
        }
    }

    /// The store for `locator`, made on first use.
    public func store(_ locator: String) throws -> JobStore {
        let known = state.withLock { $0.byText[locator] }
        if let known { return known }
        let parsed = try Locator(locator)
        return try state.withLock { s in
            let store: JobStore
            if let existing = s.stores[parsed] {
                store = existing
            } else {
                store = JobStore(locator: parsed, store: try backend(parsed), cache: cache)
                s.stores[parsed] = store
            }
            if s.byText.count >= Self.maxTexts { s.byText.removeAll() }
            s.byText[locator] = store
            return store
        }
    }

    /// Spellings remembered at most (a client could name one store many ways).
    static let maxTexts = 1024

    public var count: Int {
        state.withLock { $0.stores.count }
    }
}
