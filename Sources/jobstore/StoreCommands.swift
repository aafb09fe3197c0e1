import ArgumentParser
import Foundation
import JobStoreClient
import JobStoreWire

extension JobStoreCommand {
    /// `jobstore init LOCATOR`: create an empty store.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a job store (exit 3 if it exists).")
        @Argument(help: "The job store to create: local:/path or aws:REGION:NAME.")
        var locator: String
        @Option(help: "A file holding a 32-byte SSE-C key to encrypt the store's objects with.")
        var sseKey: String?
        @OptionGroup var connection: SocketOption
        @Flag(help: "Print a JSON object.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let client = try connection.connect()
                defer { client.connection.close() }
                // The key makes the new bucket accept SSE-C (as Toil's AWSJobStore does).
                let key = try sseKey.map(SSEKeyFile.read) ?? []
                _ = try await client.initialize(StoreRequest(locator: locator, sseKey: key))
                if json { try printJSON(["locator": locator, "initialized": true]) } else { print("initialized \(locator)") }
            }
        }
    }

    /// `jobstore destroy LOCATOR`: delete a store and everything in it.
    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a job store and everything in it.",
            discussion: "On a terminal it asks first, unless --yes. Exit 2 if there is no such store.")
        @OptionGroup var store: StoreArguments
        @Flag(help: "Do not ask.")
        var yes = false
        @Flag(help: "Print a JSON object.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                if !yes && isatty(0) == 1 {
                    FileHandle.standardError.write(Data("Destroy \(store.locator) and every job and file in it? [y/N] ".utf8))
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        throw CommandFailure(status: CommandFailure.failed, message: "not destroyed")
                    }
                }
                _ = try await client.destroy(StoreRequest(locator: store.locator))
                if json { try printJSON(["locator": store.locator, "destroyed": true]) } else { print("destroyed \(store.locator)") }
            }
        }
    }

    /// `jobstore jobs LOCATOR`: every job with the size of its description.
    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a store's jobs with the size of each description.")
        @OptionGroup var store: StoreArguments
        @Flag(help: "A JSON array of {job_id, size}.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                try await printListing(json: json, idKey: "job_id") { token in
                    let page = try await client.listJobs(ListJobsRequest(locator: store.locator, pageToken: token, sseKey: try store.key))
                    return (page.jobs.map { ($0.jobId, $0.size) }, page.nextPageToken)
                }
            }
        }
    }

    /// `jobstore files LOCATOR [--job ID]`: files with their sizes.
    struct Files: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a store's files with their sizes, or only those a job deletes with it (--job).")
        @OptionGroup var store: StoreArguments
        @Option(help: "Only the files written for this job with cleanup.")
        var job: String?
        @Flag(help: "A JSON array of {file_id, size}.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                if let job, try await !client.jobExists(JobRequest(locator: store.locator, jobId: job, sseKey: try store.key)).exists {
                    throw JobStoreError(.notFound, "Job \(job) does not exist in \(store.locator).", kind: .noSuchJob)
                }
                try await printListing(json: json, idKey: "file_id") { token in
                    let page = try await client.listFiles(ListFilesRequest(locator: store.locator, jobId: job ?? "", pageToken: token, sseKey: try store.key))
                    return (page.files.map { ($0.fileId, $0.size) }, page.nextPageToken)
                }
            }
        }
    }

    /// `jobstore url LOCATOR FILE_ID`: a URL to read a file with, for tools outside the daemon.
    struct URLCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "url",
            abstract: "Print a URL a file can be read from (a presigned URL on aws: stores, file:// on local ones).")
        @OptionGroup var store: StoreArguments
        @Argument(help: "The file id (with --shared: the shared file's name).")
        var file: String
        @Flag(help: "FILE is a shared file's name.")
        var shared = false
        @Option(help: "Seconds the URL stays valid (default: the daemon's --url-expiry).")
        var expires: UInt32 = 0
        @Flag(help: "Print a JSON object.")
        var json = false

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                let url = shared
                    ? try await client.getSharedPublicUrl(PublicUrlRequest(locator: store.locator, name: file, expiresSeconds: expires, sseKey: try store.key)).url
                    : try await client.getPublicUrl(PublicUrlRequest(locator: store.locator, fileId: file, expiresSeconds: expires, sseKey: try store.key)).url
                if json { try printJSON(["url": url]) } else { print(url) }
            }
        }
    }
}

/// Prints every page of a listing of ids and sizes: `ID<tab>SIZE` lines as pages arrive, or
/// with `json` one array of `{idKey, "size"}` objects at the end.
func printListing(json: Bool, idKey: String,
                  page: (_ token: String) async throws -> (rows: [(id: String, size: UInt64)], next: String)) async throws {
    var token = ""
    var all: [[String: Any]] = []
    repeat {
        let (rows, next) = try await page(token)
        for row in rows {
            if json { all.append([idKey: row.id, "size": row.size]) } else { print("\(row.id)\t\(row.size)") }
        }
        token = next
    } while !token.isEmpty
    if json { try printJSON(all) }
}
