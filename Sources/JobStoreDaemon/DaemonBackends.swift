import Foundation
import JobStoreCore
import ObjectStore
import S3

/// The stores a daemon opens: local: ones on this node, aws: ones through one S3 session for
/// the whole daemon (one connection pool, one credential chain, one pace, one upload journal).
enum DaemonBackends {
    /// `outageEvents` nil: calls never wait through an S3 outage (`--check-endpoint` answers at once).
    static func make(_ c: DaemonConfiguration, outageEvents: (@Sendable (S3Reachability.Event) -> Void)? = nil) throws
        -> (StoreRegistry.BackendFactory, S3Stores) {
        let local = StoreRegistry.localOnly(durable: c.durable)
        // A bundle that cannot be read is a usage error at start, not a certificate failure on
        // the first call.
        if let bundle = c.tls.caBundle, !FileManager.default.isReadableFile(atPath: bundle) {
            throw DaemonConfiguration.Invalid("the CA bundle \(bundle) (from \(c.tls.caBundleSource)) cannot be read")
        }
        let session = CurlSession(maxConnections: c.s3MaxConnections, stallSeconds: c.s3StallSeconds, tls: c.tls, proxies: c.proxies)
        let pool = BufferPool(partSize: c.partSize, capacity: c.transferBuffers)
        let chain = CredentialChain(session: session)
        let credentials: @Sendable () throws -> AWSCredentials = {
            do {
                return try chain.credentials()
            } catch let e as CredentialsError {
                throw ObjectStoreError.permissionDenied(e.message)
            }
        }
        let stores = S3Stores(session: session, pool: pool, partConcurrency: c.partConcurrency, endpoint: c.endpoint,
                              pathStyle: c.pathStyle, defaultRegion: c.defaultRegion,
                              journal: UploadJournal(path: c.cacheDirectory + "/uploads.journal"),
                              outageTolerance: outageEvents == nil ? 0 : c.s3OutageTolerance, onOutageEvent: outageEvents ?? { _ in },
                              credentials: credentials)
        let factory: StoreRegistry.BackendFactory = { locator in
            switch locator {
            case .local(let path):
                try c.checkLocalRoot(path)
                return try local(locator)
            case .aws(let region, _): return stores.store(region: region)
            }
        }
        return (factory, stores)
    }
}
