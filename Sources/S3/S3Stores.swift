import Foundation
import ObjectStore
import Synchronization

/// One S3ObjectStore per region, all on the daemon's single session: what makes a node's many
/// workers one S3 client (one pool, one pace, one outage state per endpoint).
public final class S3Stores: Sendable {
    public let session: CurlSession
    let pool: BufferPool
    let partConcurrency: Int
    let endpoint: URL?
    /// The region of s3:// URLs' buckets with an explicit endpoint, and of their region probe's fallback.
    let defaultRegion: String
    let credentials: @Sendable () throws -> AWSCredentials
    /// One pace for the whole session: a throttle seen in one region slows that endpoint's
    /// requests for every worker.
    let rate = AdaptiveRate()
    /// Requests of every region's client, by operation.
    public let counters = S3RequestCounters()
    /// What `state` guards: the stores made so far, the regions learnt, and the endpoints' states.
    private struct State {
        var byRegion: [String: S3ObjectStore] = [:]
        var bucketRegions: [String: String] = [:]
        /// One state per endpoint URL: with --endpoint every region's client shares it.
        var reachabilities: [String: S3Reachability] = [:]
    }
    private let state = Mutex(State())

    let pathStyle: Bool

    /// Open multipart uploads of this daemon, aborted at the next start after a crash.
    public let journal: UploadJournal?

    /// Seconds of S3 outage calls wait through (--s3-outage-tolerance), and where its events go.
    let outageTolerance: Double
    let onOutageEvent: @Sendable (S3Reachability.Event) -> Void

    public init(session: CurlSession, pool: BufferPool, partConcurrency: Int, endpoint: URL?, pathStyle: Bool,
                defaultRegion: String = "us-east-1", journal: UploadJournal?, outageTolerance: Double = 0,
         onOutageEvent: @escaping @Sendable (S3Reachability.Event) -> Void = { _ in },
         credentials: @escaping @Sendable () throws -> AWSCredentials) {
        self.journal = journal
        self.defaultRegion = defaultRegion
        self.outageTolerance = outageTolerance
        self.onOutageEvent = onOutageEvent
        self.pathStyle = pathStyle
        self.session = session
        self.pool = pool
        self.partConcurrency = partConcurrency
        self.endpoint = endpoint
        self.credentials = credentials
    }

    /// The store for an s3:// URL's bucket: with an explicit endpoint, the default region's;
    /// on AWS, the bucket's own region (asked once, from the x-amz-bucket-region header).
    public func store(forBucket bucket: String) throws -> S3ObjectStore {
        if endpoint != nil { return store(region: defaultRegion) }
        let known = state.withLock { $0.bucketRegions[bucket] }
        if let known { return store(region: known) }
        let probe = store(region: "us-east-1")
        let response = try probe.client.send("HEAD", bucket: bucket, accept: [301, 400, 403, 404])
        if response.status == 404 { throw ObjectStoreError.noSuchBucket(bucket) }
        let region = response.headers["x-amz-bucket-region"] ?? defaultRegion
        state.withLock { $0.bucketRegions[bucket] = region }
        return store(region: region)
    }

    /// Every endpoint's reachability, as Stats shows it.
    public var reachability: [S3Reachability.Snapshot] {
        let all = state.withLock { Array($0.reachabilities.values) }
        return all.map(\.snapshot).sorted { $0.endpoint < $1.endpoint }
    }

    public func store(region: String) -> S3ObjectStore {
        state.withLock { state in
            if let s = state.byRegion[region] { return s }
            let url = endpoint ?? URL(string: "https://s3.\(region).amazonaws.com")!
            let reachability = state.reachabilities[url.absoluteString]
                ?? S3Reachability(endpoint: url.absoluteString, tolerance: outageTolerance, onEvent: onOutageEvent)
            state.reachabilities[url.absoluteString] = reachability
            let client = S3Client(endpoint: .init(url: url, region: region, pathStyle: pathStyle), session: session, rate: rate,
                                  counters: counters, reachability: reachability, credentials: credentials)
            let s = S3ObjectStore(client: client, pool: pool, partConcurrency: partConcurrency, journal: journal)
            state.byRegion[region] = s
            return s
        }
    }
}
