import Foundation

/// How the S3 session checks servers' certificates, as the AWS tools do: always verified, against
/// the system's store unless a CA bundle is given (`--ca-bundle`, `AWS_CA_BUNDLE`, or `ca_bundle`
/// in the profile of `~/.aws/config`, in botocore's precedence); verification off only when asked
/// for explicitly (tests).
public struct TLSSettings: Sendable, Equatable {
    /// A PEM file of CA certificates trusted instead of the system's (nil: the system store).
    public var caBundle: String?
    /// Where `caBundle` came from, for `--print-config` and error messages.
    public var caBundleSource: String
    public var verify: Bool

    public init(caBundle: String? = nil, caBundleSource: String = "", verify: Bool = true) {
        self.caBundle = caBundle
        self.caBundleSource = caBundleSource
        self.verify = verify
    }

    /// The settings from an explicit bundle (the flag), else the environment, else the profile's
    /// `ca_bundle` in the shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`; profile
    /// `AWS_PROFILE`, else `default`). A pure function of its inputs: `readFile` reads the config.
    public static func resolve(caBundle flag: String?, noVerify: Bool, environment: [String: String],
                               readFile: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }) -> TLSSettings {
        if let flag, !flag.isEmpty { return TLSSettings(caBundle: flag, caBundleSource: "--ca-bundle", verify: !noVerify) }
        if let env = environment["AWS_CA_BUNDLE"], !env.isEmpty {
            return TLSSettings(caBundle: env, caBundleSource: "AWS_CA_BUNDLE", verify: !noVerify)
        }
        let config = SharedConfigFile.profileInConfig(environment)
        if let text = readFile(config.path), let bundle = SharedConfigFile.section(config.section, in: text)?["ca_bundle"], !bundle.isEmpty {
            return TLSSettings(caBundle: bundle, caBundleSource: "ca_bundle of profile \(config.profile) in \(config.path)", verify: !noVerify)
        }
        return TLSSettings(verify: !noVerify)
    }

    /// How certificates are checked, in words (logs, `--print-config`, errors, `--check-endpoint`).
    public var summary: String {
        guard verify else { return "certificates NOT verified (--no-verify-tls)" }
        return caBundle.map { "verified against \($0) (from \(caBundleSource))" } ?? "verified against the system's CA certificates"
    }

    /// libcurl errors that mean the server's certificate was refused (unknown CA, wrong host,
    /// expired, a bad CA file): retrying cannot help, so these fail the call at once.
    static let certificateErrors: Set<Int> = [
        51,  // CURLE_PEER_FAILED_VERIFICATION in older libcurl (host name)
        58,  // CURLE_SSL_CERTPROBLEM
        60,  // CURLE_PEER_FAILED_VERIFICATION / SSL certificate problem
        77,  // CURLE_SSL_CACERT_BADFILE
        83,  // CURLE_SSL_ISSUER_ERROR
        90,  // CURLE_SSL_PINNEDPUBKEYNOTMATCH
    ]
}
