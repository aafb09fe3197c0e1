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
        let tls = TLSSettings.resolve(caBundle: caBundle, noVerify: noVerifyTLS, environment: ProcessInfo.processInfo.environment)
        if let bundle = tls.caBundle, !FileManager.default.isReadableFile(atPath: bundle) {
            throw ValidationError("the CA bundle \(bundle) (from \(tls.caBundleSource)) cannot be read")
        }
        return tls
    }

    func logTLS(_ tls: TLSSettings, logger: Logger) {
        if !tls.verify {
            logger.warning("TLS certificates of S3 endpoints are NOT verified (--no-verify-tls): for tests only")
        } else if tls.caBundle != nil {
            logger.info("TLS: \(Self.tlsDescription(tls))")
        }
    }

    static func tlsDescription(_ tls: TLSSettings) -> String {
        guard tls.verify else { return "certificates NOT verified (--no-verify-tls)" }
        return tls.caBundle.map { "verified against \($0) (from \(tls.caBundleSource))" } ?? "verified against the system's CA certificates"
    }

    /// Stats' view of the session: connections, handshakes, how certificates are checked.
    static func s3Session(_ session: CurlSession) -> S3SessionStats {
        let c = session.connections.snapshot
        return S3SessionStats(connectionsOpened: c.opened, requestsOnOpenConnections: c.requestsOnOpenConnections,
                              tlsHandshakes: c.tlsHandshakes, tlsVerificationDisabled: !session.tls.verify,
                              caBundle: session.tls.caBundle ?? "", tlsSessionsResumed: c.tlsSessionsResumed)
    }
}
