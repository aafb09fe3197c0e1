import ArgumentParser
import Foundation
import JobStoreClient
import JobStoreWire

/// `jobstore`: talk to the node's jobstored by hand.
@main
struct JobStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobstore",
        abstract: "Inspect the node's jobstored daemon and its job stores.",
        subcommands: [Status.self, Ping.self])
}

struct SocketOption: ParsableArguments {
    @Option(help: "The daemon's socket (default: as jobstored's).")
    var socket: String?

    func connect() throws -> JobStoreClient {
        JobStoreClient(connection: try ClientConnection(path: socket))
    }
}

extension JobStoreCommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the daemon's version, uptime and counters.")
        @OptionGroup var options: SocketOption
        @Flag(help: "One JSON object, for scripts.")
        var json = false

        func run() async throws {
            let client = try options.connect()
            let s = try await client.stats()
            if json {
                print(try StatusJSON.render(s))
                client.connection.close()
                return
            }
            print("jobstored \(s.serverVersion), up \(s.uptimeSeconds)s")
            print("connections: \(s.connections) open, \(s.connectionsTotal) total; calls in flight: \(s.callsInFlight); stores open: \(s.storesOpen)")
            print("bytes in: \(s.bytesIn), bytes out: \(s.bytesOut)")
            for m in s.methods where m.calls > 0 {
                print("  \(m.method): \(m.calls) calls, \(m.errors) errors, \(m.totalMicros / max(m.calls, 1)) µs mean")
            }
            if let c = s.cache, c.enabled {
                print("cache \(c.directory): \(c.entries) entries, \(c.sizeBytes) of \(c.capacityBytes) bytes (\(c.reservedBytes) reserved), \(c.pinnedEntries) pinned")
                print("  hits \(c.hits), misses \(c.misses), revalidations \(c.revalidations), joined \(c.joined), written through \(c.writtenThrough), bypassed \(c.bypassed), evictions \(c.evictions), invalidations \(c.invalidations), corrupt \(c.corrupt)")
                print("  bytes from cache \(c.bytesFromCache), from the store \(c.bytesFromStore)")
            } else {
                print("cache: off")
            }
            if !s.backendRequests.isEmpty {
                print("S3 requests:")
                for r in s.backendRequests {
                    print("  \(r.operation): \(r.requests) sent, \(r.errors) errors, \(r.retries) retries, \(r.throttled) throttled, \(r.notModified) not modified, \(r.bytesSent) bytes out, \(r.bytesReceived) bytes in, \(r.totalMicros / max(r.requests, 1)) µs mean")
                }
            }
            client.connection.close()
        }
    }

    struct Ping: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that the daemon answers.")
        @OptionGroup var options: SocketOption

        func run() async throws {
            let client = try options.connect()
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await client.ping()
            print("pong in \((DispatchTime.now().uptimeNanoseconds - start) / 1000) µs")
            client.connection.close()
        }
    }
}
