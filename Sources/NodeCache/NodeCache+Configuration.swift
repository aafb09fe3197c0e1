import ObjectStore

extension NodeCache {
    /// What the daemon asks of the node cache (its directory, size and policies), fixed at start.
    public struct Configuration: Sendable {
        public var directory: String
        /// The most bytes the cache's entries and fills may hold.
        public var capacity: UInt64
        /// Keep at least this fraction of the filesystem free (0.05: 5 %).
        public var minFreeFraction: Double
        /// Serve an entry without revalidating it for this many seconds after it was checked.
        public var trustSeconds: Double
        /// How long a path handed to a client for linking stays safe from eviction.
        public var linkLeaseSeconds: Double
        /// Whether an object's entry should be executable (kept by hard links).
        public var isExecutable: @Sendable (ObjectInfo) -> Bool
        /// How long to wait for another daemon to release the directory.
        public var lockWaitSeconds: Double = 0

        public init(directory: String, capacity: UInt64, minFreeFraction: Double = 0.05, trustSeconds: Double = 0,
                    linkLeaseSeconds: Double = 60, isExecutable: @escaping @Sendable (ObjectInfo) -> Bool = { _ in false }) {
            self.directory = directory
            self.capacity = capacity
            self.minFreeFraction = minFreeFraction
            self.trustSeconds = trustSeconds
            self.linkLeaseSeconds = linkLeaseSeconds
            self.isExecutable = isExecutable
        }
    }
}
