import Foundation
import ObjectStore
import S3

extension DaemonConfiguration {
    /// `--check-endpoint`: one signed ListBuckets on the daemon's own session, reported as one
    /// line an operator can act on: which of TLS, credentials and the listing failed, and why.
    public func endpointCheck(environment env: [String: String]) throws -> (line: String, ok: Bool) {
        let (_, stores) = try DaemonBackends.make(self)
        let store = stores.store(region: defaultRegion)
        let endpoint = store.client.endpoint.url.absoluteString
        let tls = store.client.endpoint.url.scheme == "https" ? "TLS ok (\(stores.session.tls.summary)), " : "plain http, "
        do {
            let response = try store.client.send("GET", bucket: "")
            let xml = String(decoding: response.body, as: UTF8.self)
            let buckets = xml.components(separatedBy: "<Bucket>").count - 1
            return ("\(endpoint): \(tls)credentials ok (\(ConfigurationReport.credentialSource(env))), ListBuckets ok (\(buckets) buckets)", true)
        } catch let e as CertificateRefused {
            return ("\(endpoint): TLS failed: \(e)", false)
        } catch let e as CurlSession.TransportError {
            return ("\(endpoint): unreachable: \(e)", false)
        } catch let e as ObjectStoreError {
            return ("\(endpoint): \(tls)credentials failed: \(e)", false)
        } catch let e as S3Client.S3Error where e.status == 403 {
            return ("\(endpoint): \(tls)credentials refused (\(ConfigurationReport.credentialSource(env))): \(e.code): \(e.message)", false)
        } catch {
            return ("\(endpoint): \(tls)ListBuckets failed: \(error)", false)
        }
    }
}
