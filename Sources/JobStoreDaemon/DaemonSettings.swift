/// Every setting of jobstored, by its long option name: what the environment
/// (`JOBSTORED_<NAME>`) and the configuration file (`name = value`) may set, and how.
///
/// Why a table beside the ArgumentParser declarations: the layers are merged into one argument
/// list before ArgumentParser sees it, so the merger must know which names take a value, which
/// repeat and which are flags. `DaemonSettingsTests` checks the table against `--help`.
public enum DaemonSettings {
    enum Shape { case value, repeated, flag }

    struct Setting {
        let name: String
        let shape: Shape
        /// Printed masked by --print-config.
        var secret = false

        /// `JOBSTORED_CACHE_SIZE` for `cache-size`.
        var environmentName: String {
            "JOBSTORED_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        }
    }

    static let all: [Setting] = [
        Setting(name: "socket", shape: .value),
        Setting(name: "log-level", shape: .value),
        Setting(name: "log-format", shape: .value),
        Setting(name: "allow-uid", shape: .repeated),
        Setting(name: "allow-gid", shape: .repeated),
        Setting(name: "local-root", shape: .repeated),
        Setting(name: "no-fsync", shape: .flag),
        Setting(name: "shutdown-deadline", shape: .value),
        Setting(name: "frame-timeout", shape: .value),
        Setting(name: "takeover", shape: .flag),
        Setting(name: "metrics", shape: .value),
        Setting(name: "endpoint", shape: .value),
        Setting(name: "ca-bundle", shape: .value),
        Setting(name: "no-verify-tls", shape: .flag),
        Setting(name: "s3-addressing", shape: .value),
        Setting(name: "s3-max-connections", shape: .value),
        Setting(name: "part-size", shape: .value),
        Setting(name: "transfer-buffers", shape: .value),
        Setting(name: "part-concurrency", shape: .value),
        Setting(name: "s3-stall-seconds", shape: .value),
        Setting(name: "s3-outage-tolerance", shape: .value),
        Setting(name: "url-expiry", shape: .value),
        Setting(name: "cache-dir", shape: .value),
        Setting(name: "cache-size", shape: .value),
        Setting(name: "cache-min-free", shape: .value),
        Setting(name: "cache-trust-seconds", shape: .value),
        Setting(name: "no-cache", shape: .flag),
    ]

    static let byName: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Options that choose what the daemon does rather than configure it: command line only.
    static let commandLineOnly: Set<String> = ["config", "print-config", "check-endpoint", "help", "version"]

    /// The configuration file read when neither `--config` nor `JOBSTORED_CONFIG` names one.
    public static let defaultConfigFile = "/etc/jobstored/jobstored.conf"
}
