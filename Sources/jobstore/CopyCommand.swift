import ArgumentParser
import Foundation
import JobStoreClient
import JobStoreWire

/// One side of `jobstore cp`: the store (a new file, an existing file, a shared file) or this
/// node (a path, or `-` for stdin/stdout).
enum CopyEndpoint: Equatable {
    case newFile
    case file(String)
    case shared(String)
    case local(String)
    case standardStream

    init(_ text: String) {
        if text == "store:" { self = .newFile }
        else if text.hasPrefix("store:") { self = .file(String(text.dropFirst(6))) }
        else if text.hasPrefix("shared:") { self = .shared(String(text.dropFirst(7))) }
        else if text == "-" { self = .standardStream }
        else { self = .local(text) }
    }

    var inStore: Bool {
        switch self {
        case .newFile, .file, .shared: true
        case .local, .standardStream: false
        }
    }
}

extension JobStoreCommand {
    /// `jobstore cp LOCATOR SOURCE DEST`: copy between this node and a store, with progress.
    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cp",
            abstract: "Copy a file between this node and a store.",
            discussion: """
            Exactly one of SOURCE and DEST names the store: `store:` (a new file; its id is printed), \
            `store:FILE_ID` (an existing file: read it, or replace its content), `shared:NAME` (a shared file). \
            The other is a local path (a directory takes the file's name) or `-` for stdin/stdout. \
            Downloads land whole or not at all (a temporary file renamed into place) and keep the executable bit.
            """)
        @OptionGroup var store: StoreArguments
        @Argument(help: "Where the bytes come from.")
        var source: String
        @Argument(help: "Where the bytes go.")
        var destination: String
        @Option(help: "For a new file: the job it belongs to (deleted with it).")
        var job: String?
        @Option(help: "For a new file: a hint for a readable id (repeatable, as Toil's file hints).")
        var hint: [String] = []
        @Flag(name: [.short, .long], help: "No progress output.")
        var quiet = false
        @Option(help: "Seconds between progress lines when stderr is not a terminal.")
        var progressInterval: Double = 1
        @Flag(help: "Print a JSON object (file_id, bytes, seconds, executable).")
        var json = false

        func validate() throws {
            let from = CopyEndpoint(source), to = CopyEndpoint(destination)
            guard from.inStore != to.inStore else {
                throw ValidationError("exactly one of SOURCE and DEST must name the store (store:, store:FILE_ID or shared:NAME)")
            }
            if from == .newFile { throw ValidationError("`store:` names a new file: it can only be a destination") }
            if (job != nil || !hint.isEmpty) && to != .newFile { throw ValidationError("--job and --hint apply to a new file (DEST store:)") }
            guard progressInterval >= 0 else { throw ValidationError("--progress-interval must not be negative") }
        }

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                let from = CopyEndpoint(source), to = CopyEndpoint(destination)
                if to.inStore {
                    try await upload(client, from: from, to: to)
                } else {
                    try await download(client, from: from, to: to)
                }
            }
        }

        func upload(_ client: JobStoreClient, from: CopyEndpoint, to: CopyEndpoint) async throws {
            let file = try LocalSource(from)
            defer { file.close() }
            let progress = Progress(total: file.size, interval: progressInterval, quiet: quiet)
            let body: (ClientUpload) async throws -> Void = { upload in
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while true {
                    let n = try file.read(into: &buffer)
                    if n == 0 { break }
                    try await upload.write(Array(buffer[0..<n]))
                    progress.add(n)
                }
            }
            var id = ""
            var executable = file.executable
            switch to {
            case .newFile:
                let request = WriteFileRequest(locator: store.locator, jobId: job ?? "", cleanup: job != nil,
                                               basename: file.basename, executable: file.executable, hints: hint, sseKey: try store.key)
                let info = try await client.writeFileStream(request, body: body)
                (id, executable) = (info.fileId, info.executable)
            case .file(let existing):
                let request = UpdateFileRequest(locator: store.locator, fileId: existing, executable: file.executable, sseKey: try store.key)
                let info = try await client.updateFileStream(request, body: body)
                (id, executable) = (info.fileId.isEmpty ? existing : info.fileId, info.executable)
            case .shared(let name):
                _ = try await client.writeSharedFileStream(SharedFileRequest(locator: store.locator, name: name, sseKey: try store.key), body: body)
                id = name
            default:
                preconditionFailure("validated: the destination is in the store")
            }
            progress.finish(verb: "copied")
            if json {
                try printJSON(["file_id": id, "bytes": progress.done, "seconds": progress.elapsed, "executable": executable])
            } else if to == .newFile {
                print(id)
            }
        }

        func download(_ client: JobStoreClient, from: CopyEndpoint, to: CopyEndpoint) async throws {
            let total: UInt64?
            let name: String
            switch from {
            case .file(let id):
                total = try await client.getFileSize(FileRequest(locator: store.locator, fileId: id, sseKey: try store.key)).size
                name = String(id.split(separator: "/").last ?? Substring(id))
            case .shared(let shared):
                total = nil
                name = shared
            default:
                preconditionFailure("validated: the source is in the store")
            }
            let target = try LocalTarget(to, defaultName: name)
            let progress = Progress(total: total, interval: progressInterval, quiet: quiet)
            let info: FileInfo
            do {
                let onData: (UnsafeRawBufferPointer) throws -> Void = { bytes in
                    try target.write(bytes)
                    progress.add(bytes.count)
                }
                if case .file(let id) = from {
                    info = try await client.readFileStream(FileRequest(locator: store.locator, fileId: id, sseKey: try store.key), onData: onData)
                } else {
                    info = try await client.readSharedFileStream(SharedFileRequest(locator: store.locator, name: name, sseKey: try store.key), onData: onData)
                }
                try target.commit(executable: info.executable)
            } catch {
                target.discard()
                throw error
            }
            progress.finish(verb: "copied")
            if json {
                try printJSON(["file_id": info.fileId.isEmpty ? name : info.fileId, "bytes": progress.done,
                               "seconds": progress.elapsed, "executable": info.executable])
            }
        }
    }
}
