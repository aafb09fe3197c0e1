import Foundation
import JobStoreWire
import S3

/// `--print-config`: every setting's effective value and where it came from, then where S3
/// credentials will come from — keys masked, nothing fetched over the network.
public struct ConfigurationReport {
    public let options: DaemonOptions
    public let configuration: DaemonConfiguration
    public let layers: ConfigurationLayers

    public init(options: DaemonOptions, configuration: DaemonConfiguration, layers: ConfigurationLayers) {
        self.options = options
        self.configuration = configuration
        self.layers = layers
    }

    public func text(version: String, environment: [String: String]) -> String {
        var out = "# jobstored \(version) effective configuration\n"
        if let file = layers.configFile { out += "# configuration file: \(file)\n" } else { out += "# configuration file: none\n" }
        for warning in layers.warnings { out += "# warning: \(warning)\n" }
        let values = settingValues(environment: environment)
        for setting in DaemonSettings.all {
            let source = layers.sources[setting.name]?.description ?? "default"
            let shown = values[setting.name] ?? []
            switch setting.shape {
            case .repeated:
                if shown.isEmpty { out += "# \(setting.name) =  # \(source): none\n" }
                for value in shown { out += "\(setting.name) = \(Self.quoted(value))  # \(source)\n" }
            case .flag, .value:
                let value = shown.first ?? ""
                out += value.isEmpty ? "# \(setting.name) =  # \(source): not set\n" : "\(setting.name) = \(Self.quoted(value))  # \(source)\n"
            }
        }
        out += "# S3 credentials: \(Self.credentialSource(environment))\n"
        out += "# proxies: \(configuration.proxies.summary)\n"
        out += "# TLS: \(configuration.tls.summary)\n"
        return out
    }

    /// Each setting's value as this daemon will use it (defaults resolved).
    func settingValues(environment: [String: String]) -> [String: [String]] {
        let o = options
        let endpointText = o.endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
        return [
            "socket": [o.socket ?? ((try? SocketPath.defaultPath()) ?? "")],
            "log-level": [o.logLevel],
            "log-format": [o.logFormat],
            "allow-uid": o.allowUIDs.map(String.init),
            "allow-gid": o.allowGIDs.map(String.init),
            "local-root": o.localRoots,
            "no-fsync": [String(o.noFsync)],
            "shutdown-deadline": [String(o.shutdownDeadline)],
            "frame-timeout": [String(o.frameTimeout)],
            "takeover": [String(o.takeover)],
            "metrics": o.metrics.map { [$0] } ?? [],
            "endpoint": endpointText.map { [Self.maskingUserinfo($0)] } ?? [],
            "ca-bundle": [configuration.tls.caBundle ?? ""],
            "no-verify-tls": [String(o.noVerifyTLS)],
            "s3-addressing": [o.s3Addressing],
            "s3-max-connections": [String(o.s3MaxConnections)],
            "part-size": [o.partSize],
            "transfer-buffers": [String(o.transferBuffers)],
            "part-concurrency": [String(o.partConcurrency)],
            "s3-stall-seconds": [String(o.s3StallSeconds)],
            "s3-outage-tolerance": [String(o.s3OutageTolerance)],
            "url-expiry": [String(o.urlExpiry)],
            "cache-dir": [configuration.cacheDirectory],
            "cache-size": [o.cacheSize],
            "cache-min-free": [String(o.cacheMinFree)],
            "cache-trust-seconds": [String(o.cacheTrustSeconds)],
            "no-cache": [String(o.noCache)],
        ]
    }

    static func quoted(_ value: String) -> String {
        let plain = value.allSatisfy { $0.isLetter || $0.isNumber || "/._-:@+".contains($0) }
        guard !plain || value.isEmpty else { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// `https://user:secret@host/` → `https://****:****@host/`.
    static func maskingUserinfo(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@"),
              !url[scheme.upperBound..<at].contains("/") else { return url }
        return String(url[..<scheme.upperBound]) + "****:****" + String(url[at...])
    }

    /// The first link of the credential chain that applies, as far as the environment tells.
    static func credentialSource(_ environment: [String: String]) -> String {
        if let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty {
            let secret = environment["AWS_SECRET_ACCESS_KEY"].map { $0.isEmpty ? "empty" : "********" } ?? "missing"
            let token = environment["AWS_SESSION_TOKEN"] != nil ? ", session token ********" : ""
            return "environment: access key \(String(key.prefix(4)))****, secret \(secret)\(token)"
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let profile = environment["AWS_PROFILE"] ?? environment["AWS_DEFAULT_PROFILE"] ?? "default"
        if FileManager.default.isReadableFile(atPath: file) {
            return "shared credentials file \(file), profile \(profile) (keys not shown)"
        }
        if environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] != nil || environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] != nil {
            return "container credentials endpoint (fetched at first use)"
        }
        return "none in the environment or \(file); instance metadata is asked at first use"
    }
}
