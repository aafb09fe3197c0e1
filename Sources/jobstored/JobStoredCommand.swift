import ArgumentParser
import BuildVersion
import Foundation
import JobStoreDaemon

/// jobstored: the per-node daemon serving Toil job stores to every worker over a Unix socket.
/// This file is only the command line: the daemon itself is `JobStoreDaemon.Daemon`.
@main
struct JobStoredCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobstored",
        abstract: "Serve Toil job stores to every worker on this node over a Unix socket.",
        discussion: """
        Every option may also come from the environment, JOBSTORED_ + its name in capitals with '_' for '-' \
        (JOBSTORED_CACHE_SIZE=50GiB; repeatable options comma-separated; flags true/false), or from a \
        configuration file of `name = value` lines (--config, $JOBSTORED_CONFIG, else \(DaemonSettings.defaultConfigFile) \
        when it exists). The command line wins over the environment, the environment over the file. \
        --print-config shows the result and where each value came from.
        """,
        version: ReleaseVersion.current)

    @Option(help: "A configuration file of `name = value` lines (default: $JOBSTORED_CONFIG, else \(DaemonSettings.defaultConfigFile) if it exists).")
    var config: String?

    @Flag(help: "Print every setting, its value and where it came from (secrets masked), then exit.")
    var printConfig = false

    @Flag(help: "Check the S3 endpoint (TLS, credentials, a bucket listing), print one line, then exit (0: all work).")
    var checkEndpoint = false

    @OptionGroup var options: DaemonOptions

    /// Merges the environment and the configuration file under the command line, then runs.
    static func main() {
        let environment = ProcessInfo.processInfo.environment
        let layers: ConfigurationLayers
        do {
            layers = try ConfigurationLayers(commandLine: Array(CommandLine.arguments.dropFirst()), environment: environment)
        } catch {
            FileHandle.standardError.write(Data("jobstored: error: \(error)\n".utf8))
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot(layers.arguments)
            if let daemon = command as? JobStoredCommand {
                try daemon.run(layers: layers, environment: environment)
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// ParsableCommand's entry, unused by `main`: no file, the process's environment.
    func run() throws {
        try run(layers: ConfigurationLayers(commandLine: [], environment: [:], fileExists: { _ in false }),
                environment: ProcessInfo.processInfo.environment)
    }

    func run(layers: ConfigurationLayers, environment: [String: String]) throws {
        do {
            let configuration = try DaemonConfiguration(options, environment: environment)
            if printConfig {
                let report = ConfigurationReport(options: options, configuration: configuration, layers: layers)
                print(report.text(version: ReleaseVersion.current, environment: environment), terminator: "")
            } else if checkEndpoint {
                let (line, ok) = try configuration.endpointCheck(environment: environment)
                print(line)
                if !ok { throw ExitCode(1) }
            } else {
                try Daemon.run(configuration, layers: layers)
            }
        } catch let invalid as DaemonConfiguration.Invalid {
            throw ValidationError(invalid.description)
        }
    }
}
