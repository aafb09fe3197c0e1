import ArgumentParser
import Foundation
import JobStoreClient
import JobStoreWire

extension JobStoreCommand {
    /// `jobstore cat LOCATOR FILE_ID`: a file's bytes on stdout.
    struct Cat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a file (or with --shared, a shared file) to stdout.")
        @OptionGroup var store: StoreArguments
        @Argument(help: "The file id (with --shared: the shared file's name).")
        var file: String
        @Flag(help: "FILE is a shared file's name.")
        var shared = false

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                let out = try LocalTarget(.standardStream, defaultName: "")
                if shared {
                    _ = try await client.readSharedFileStream(SharedFileRequest(locator: store.locator, name: file, sseKey: try store.key)) { try out.write($0) }
                } else {
                    _ = try await client.readFileStream(FileRequest(locator: store.locator, fileId: file, sseKey: try store.key)) { try out.write($0) }
                }
            }
        }
    }

    /// `jobstore logs LOCATOR`: the messages workers logged to the store.
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the log messages workers wrote to a store.",
            discussion: """
            Without --all, prints the messages not read before and marks them read, as Toil's leader does: \
            a leader still running will not see them. --all prints every message and marks nothing.
            """)
        @OptionGroup var store: StoreArguments
        @Flag(help: "Every message, read before or not; nothing is marked read.")
        var all = false
        @Flag(help: "Keep printing new messages (polling every --poll-interval seconds) until interrupted.")
        var follow = false
        @Option(help: "Seconds between polls with --follow.")
        var pollInterval: Double = 1
        @Flag(help: "One JSON object per message ({\"message\": ...}), one per line.")
        var json = false

        func validate() throws {
            guard pollInterval.isFinite, pollInterval >= 0, pollInterval <= 86_400 else {
                throw ValidationError("--poll-interval must be between 0 and 86400 seconds")
            }
        }

        /// Seconds a follower with --all looks back before the last key it read: logs are keyed
        /// by their writer's clock when the upload began, so one may appear after a later key.
        static let followOverlap: UInt32 = 300

        func run() async throws {
            try await reportingFailures {
                let client = try await store.open()
                defer { client.connection.close() }
                var token = ""
                var seen = Set<String>()
                while true {
                    var first = true
                    var oldestListed: String?
                    // One poll: every page from the token (looking back, when following).
                    while true {
                        let overlap = all && follow && first ? Self.followOverlap : 0
                        let page = try await client.readLogs(ReadLogsRequest(locator: store.locator, readAll: all,
                                                                             pageToken: all ? token : "", overlapSeconds: overlap,
                                                                             sseKey: try store.key))
                        for (index, message) in page.messages.enumerated() {
                            if all && follow, index < page.keys.count {
                                let key = page.keys[index]
                                oldestListed = min(oldestListed ?? key, key)
                                guard seen.insert(key).inserted else { continue }
                            }
                            try show(message)
                        }
                        fflush(nil)
                        if all { token = max(token, page.resumeToken) }
                        first = false
                        if page.nextPageToken.isEmpty { break }
                        if all { token = max(token, page.nextPageToken) }
                    }
                    guard follow else { return }
                    // Keys before this poll's window will not be listed again.
                    if let oldestListed { seen = seen.filter { $0 >= oldestListed } }
                    try await Task.sleep(nanoseconds: UInt64(max(pollInterval, 0.05) * 1e9))
                }
            }
        }

        func show(_ message: [UInt8]) throws {
            let text = String(decoding: message, as: UTF8.self)
            if json {
                try printJSON(["message": text])
            } else {
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            }
        }
    }
}
