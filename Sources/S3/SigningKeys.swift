import Synchronization

/// Memoized SigV4 signing keys. A key is derived from the secret, the day, the region and the
/// service by four HMACs, and a node signs thousands of requests a second with the same four:
/// deriving it once per day saves most of the signing's cryptography. Memoization keeps
/// `SigV4.sign` a pure function (the same inputs give the same key, cached or not).
final class SigningKeys: Sendable {
    static let shared = SigningKeys()

    private struct Inputs: Hashable {
        let secret: String
        let day: String
        let region: String
        let service: String
    }

    /// A handful of entries at most (credential rotation, a new day, a second region): cleared
    /// rather than evicted one by one when it grows past this.
    private static let capacity = 16
    private let keys = Mutex<[Inputs: [UInt8]]>([:])

    func key(secret: String, day: String, region: String, service: String) -> [UInt8] {
        let inputs = Inputs(secret: secret, day: day, region: region, service: service)
        if let key = keys.withLock({ $0[inputs] }) { return key }
        let key = SigV4.signingKey(secret: secret, day: day, region: region, service: service)
        keys.withLock { cache in
            if cache.count >= Self.capacity { cache.removeAll() }
            cache[inputs] = key
        }
        return key
    }
}
