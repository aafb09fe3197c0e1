import ArgumentParser
import Foundation
import JobStoreWire
import Logging
import S3

extension Daemon {
    /// The S3 session's certificate checks, from `--ca-bundle`, `AWS_CA_BUNDLE` or the profile's
    /// `ca_bundle` (botocore's precedence). A bundle that cannot be read is a usage error at start,
    /// not a certificate failure on the first call.
    func tlsSettings() throws -> TLSSettings {
        let tls = resolvedTLS(ProcessInfo.processInfo.environment)
        if let bundle = tls.caBundle, !FileManager.default.isReadableFile(atPath: bundle) {
            throw ValidationError("the CA bundle \(bundle) (from \(tls.caBundleSource)) cannot be read")
        }
        return tls
    }

    /// The flags and the environment as TLS settings, unchecked (for `--print-config` too).
    func resolvedTLS(_ environment: [String: String]) -> TLSSettings {
        TLSSettings.resolve(caBundle: caBundle, noVerify: noVerifyTLS, environment: environment)
    }

    func logTLS(_ tls: TLSSettings, logger: Logger) {
        if !tls.verify {
            logger.warning("TLS certificates of S3 endpoints are NOT verified (--no-verify-tls): for tests only")
        } else if tls.caBundle != nil {
            logger.info("TLS: \(tls.summary)")
        }
    }

    /// Stats' view of the session: connections, handshakes, how certificates are checked.
    static func s3Session(_ stores: S3Stores) -> S3SessionStats {
        let session = stores.session
        let c = session.connections.snapshot
        return S3SessionStats(connectionsOpened: c.opened, requestsOnOpenConnections: c.requestsOnOpenConnections,
                              tlsHandshakes: c.tlsHandshakes, tlsVerificationDisabled: !session.tls.verify,
                              caBundle: session.tls.caBundle ?? "", tlsSessionsResumed: c.tlsSessionsResumed,
                              outages: stores.reachability.map(outageStats))
    }

    static func outageStats(_ r: S3Reachability.Snapshot) -> S3OutageStats {
        func ms(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds * 1000).rounded()) }
        return S3OutageStats(endpoint: r.endpoint, unreachable: r.unreachableSince != nil,
                             unreachableSinceUnixMs: r.unreachableSince.map { ms($0.timeIntervalSince1970) } ?? 0,
                             unreachableMs: ms(r.unreachableSeconds), cause: r.cause, outages: r.outages,
                             longestOutageMs: ms(r.longestOutageSeconds), callsWaited: r.callsWaited, callsWaiting: r.callsWaiting,
                             longestWaitMs: ms(r.longestWaitSeconds), callsFailed: r.callsFailed, toleranceMs: ms(r.tolerance))
    }
}
