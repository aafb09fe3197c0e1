import Foundation
import ObjectStore
import S3

extension Daemon {
    /// `--check-endpoint`: one signed ListBuckets on the daemon's own session, reported as one
    /// line an operator can act on: which of TLS, credentials and the listing failed, and why.
    func endpointCheck() throws -> (line: String, ok: Bool) {
        let (_, stores) = try backends()
        let env = ProcessInfo.processInfo.environment
        let store = stores.store(region: env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1")
        let endpoint = store.client.endpoint.url.absoluteString
        let tls = store.client.endpoint.url.scheme == "https" ? "TLS ok (\(stores.session.tls.summary)), " : "plain http, "
        do {
            let response = try store.client.send("GET", bucket: "")
            let xml = String(decoding: response.body, as: UTF8.self)
            let buckets = xml.components(separatedBy: "<Bucket>").count - 1
            return ("\(endpoint): \(tls)credentials ok (\(Self.credentialSource(env))), ListBuckets ok (\(buckets) buckets)", true)
        } catch let e as CertificateRefused {
            return ("\(endpoint): TLS failed: \(e)", false)
        } catch let e as CurlSession.TransportError {
            return ("\(endpoint): unreachable: \(e)", false)
        } catch let e as ObjectStoreError {
            return ("\(endpoint): \(tls)credentials failed: \(e)", false)
        } catch let e as S3Client.S3Error where e.status == 403 {
            return ("\(endpoint): \(tls)credentials refused (\(Self.credentialSource(env))): \(e.code): \(e.message)", false)
        } catch {
            return ("\(endpoint): \(tls)ListBuckets failed: \(error)", false)
        }
    }
}
