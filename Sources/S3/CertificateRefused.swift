/// The S3 endpoint's TLS certificate was not accepted (unknown CA, another host's name, expired):
/// a configuration problem, so the call fails at once instead of being retried as if transient,
/// and the message says which endpoint, why, and where a CA bundle can be given.
public struct CertificateRefused: Error, Sendable, CustomStringConvertible {
    public let endpoint: String
    public let transport: CurlSession.TransportError
    public let tls: TLSSettings

    public var description: String {
        "the TLS certificate of \(endpoint) was refused: \(transport.message) (libcurl error \(transport.code)); "
            + "certificates are \(tls.summary). Give the server's CA with --ca-bundle FILE, AWS_CA_BUNDLE or ca_bundle in ~/.aws/config."
    }
}
