import ArgumentParser
import BuildVersion
import Foundation
import JobStoreClient
import JobStoreWire

/// `jobstore`: talk to the node's jobstored by hand — see the daemon's state, look into a
/// store, copy files in and out. Every subcommand goes through the Swift client, as a worker
/// would, and exits with a status a shell script can rely on (see `CommandFailure`).
@main
struct JobStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobstore",
        abstract: "Inspect the node's jobstored daemon and its job stores.",
        discussion: """
        Exit status: 0 success; 1 the operation failed; 2 not found (no such store, job or file); \
        3 already exists; 4 permission denied; 64 usage error; 69 the daemon cannot be reached.
        """,
        version: ReleaseVersion.current,
        subcommands: [Status.self, Ping.self, Init.self, Destroy.self, Jobs.self, Files.self, Cat.self, Copy.self,
                      Logs.self, URLCommand.self])
}

/// `--socket`, shared by every subcommand.
struct SocketOption: ParsableArguments {
    @Option(help: "The daemon's socket (default: as jobstored's: $JOBSTORED_SOCKET, else $XDG_RUNTIME_DIR/jobstored.sock, else /tmp/jobstored-$UID/jobstored.sock).")
    var socket: String?

    func connect() throws -> JobStoreClient {
        do {
            let connection = try ClientConnection(path: socket)
            connection.reconnectTimeout = 0
            return JobStoreClient(connection: connection)
        } catch let error as JobStoreError {
            // A socket this user may not open is a permission problem, not an absent daemon.
            let path = socket ?? ClientConnection.defaultSocketPath
            let denied = access(path, R_OK | W_OK) != 0 && errno == EACCES
            throw CommandFailure(status: denied ? CommandFailure.denied : CommandFailure.unreachable, message: error.message)
        }
    }
}

/// The store a subcommand works on and how to open it.
struct StoreArguments: ParsableArguments {
    @Argument(help: "The job store: local:/path or aws:REGION:NAME.")
    var locator: String

    @Option(help: "A file holding the store's 32-byte SSE-C key (aws: stores written with one, as Toil's --sseKey).")
    var sseKey: String?

    @OptionGroup var connection: SocketOption

    /// The key's bytes for a request's `sse_key` (empty without --sse-key), read by this
    /// command: the daemon never opens a key file for a client.
    var key: [UInt8] {
        get throws { try sseKey.map(SSEKeyFile.read) ?? [] }
    }

    /// Connects and checks the store exists (NO_SUCH_JOB_STORE otherwise).
    func open() async throws -> JobStoreClient {
        _ = try key  // a bad key file fails before anything is sent
        let client = try connection.connect()
        if try await !client.storeExists(StoreRequest(locator: locator)).exists {
            throw JobStoreError(.notFound, "The job store '\(locator)' does not exist, so there is nothing to do.",
                                kind: .noSuchJobStore)
        }
        return client
    }
}

/// A failure the command reports with `jobstore: error: MESSAGE` and an exit status.
struct CommandFailure: Error, CustomStringConvertible {
    static let failed: Int32 = 1
    static let notFound: Int32 = 2
    static let exists: Int32 = 3
    static let denied: Int32 = 4
    static let usage: Int32 = 64
    static let unreachable: Int32 = 69

    var status: Int32
    var message: String
    var description: String { message }

    /// The exit status for a daemon's answer.
    static func status(of error: JobStoreError) -> Int32 {
        switch (error.code, error.kind) {
        case (_, .noSuchJob), (_, .noSuchFile), (_, .noSuchJobStore), (.notFound, _): notFound
        case (_, .jobStoreExists), (.alreadyExists, _): exists
        case (.permissionDenied, _), (.unauthenticated, _): denied
        case (_, .invalidLocator), (_, .invalidName), (.invalidArgument, _): usage
        default: failed
        }
    }
}

/// Runs a subcommand's body, turning every failure into its message on stderr and an exit
/// status; the connection is closed either way.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as CommandFailure {
        throw exit(failure.status, failure.message)
    } catch let error as JobStoreError {
        throw exit(CommandFailure.status(of: error), error.message)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw exit(CommandFailure.usage, error.message)
    } catch {
        throw exit(CommandFailure.failed, "\(error)")
    }
}

private func exit(_ status: Int32, _ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("jobstore: error: \(message)\n".utf8))
    return ExitCode(status)
}

/// Prints a JSON value (objects with sorted keys) on one line.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}
