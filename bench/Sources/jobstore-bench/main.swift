import Foundation
import JobStoreClient
import JobStoreWire

// jobstore-bench: latency and throughput of the daemon, each next to a baseline measured in
// the same run. Usage: jobstore-bench DAEMON_BINARY [--calls N]

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func report(_ name: String, _ micros: [Double]) {
    let s = micros.sorted()
    let padded = name.padding(toLength: 44, withPad: " ", startingAt: 0)
    print(padded + String(format: "p50 %7.1f µs   p99 %7.1f µs   (n=%d)", percentile(s, 0.5), percentile(s, 0.99), s.count))
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// `jobstore-bench --echo-server PATH`: echo 12-byte messages on a Unix socket, one
/// connection, as another process (the daemon is another process too).
func echoServer(path: String) throws -> Never {
    unlink(path)
    let listener = try UnixSocket.listen(path: path)
    let fd = accept(listener, nil, nil)
    var buffer = [UInt8](repeating: 0, count: 12)
    while true {
        var got = 0
        while got < 12 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, 12 - got) }
            if n <= 0 { exit(0) }
            got += n
        }
        _ = write(fd, buffer, 12)
    }
}

/// The floor: a 12-byte frame header echoed by another process over a Unix socket.
func rawEcho(calls: Int, scratch: String) throws -> [Double] {
    let path = scratch + "/echo-\(UUID().uuidString.prefix(8)).sock"
    let server = Process()
    server.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    server.arguments = ["--echo-server", path]
    try server.run()
    defer { server.terminate(); server.waitUntilExit() }
    var fd: Int32 = -1
    while fd < 0 { fd = (try? UnixSocket.connect(path: path)) ?? -1; if fd < 0 { usleep(10_000) } }
    var fds: [Int32] = [fd, fd]
    var buffer = [UInt8](repeating: 0, count: 12)
    var samples: [Double] = []
    samples.reserveCapacity(calls)
    for i in 0..<(calls + 1000) {
        let t = now()
        _ = write(fds[0], buffer, 12)
        var got = 0
        while got < 12 { got += buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress! + got, 12 - got) } }
        if i >= 1000 { samples.append(Double(now() - t) / 1000) }
    }
    close(fds[0])
    return samples
}

/// Ping through the daemon with blocking frame I/O (no async client): the server's share.
func rawPing(socket: String, calls: Int) throws -> [Double] {
    let fd = try UnixSocket.connect(path: socket)
    defer { close(fd) }
    let writer = FrameWriter(fd: fd)
    let reader = FrameReader(fd: fd)
    var samples: [Double] = []
    for i in 0..<(calls + 1000) {
        let t = now()
        try writer.send(FrameHeader(payloadLength: 0, callID: 1, code: JobStoreMethod.ping.rawValue, type: .request), payload: [])
        _ = try reader.next(maxPayload: { _ in 1 << 20 })
        if i >= 1000 { samples.append(Double(now() - t) / 1000) }
    }
    return samples
}

func clientPing(_ client: JobStoreClient, calls: Int) async throws -> [Double] {
    var samples: [Double] = []
    for i in 0..<(calls + 1000) {
        let t = now()
        _ = try await client.ping()
        if i >= 1000 { samples.append(Double(now() - t) / 1000) }
    }
    return samples
}

/// Small jobs: create + load + update per job, `workers` connections in parallel.
func smallJobs(socket: String, locator: String, workers: Int, jobsPerWorker: Int) async throws -> Double {
    let start = now()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for w in 0..<workers {
            group.addTask {
                let client = JobStoreClient(connection: try ClientConnection(path: socket))
                defer { client.connection.close() }
                let body = [UInt8](repeating: 7, count: 2048)
                for j in 0..<jobsPerWorker {
                    let id = "w\(w)-\(j)"
                    _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: body))
                    _ = try await client.loadJob(JobRequest(locator: locator, jobId: id))
                    _ = try await client.updateJob(JobBody(locator: locator, jobId: id, body: body))
                }
            }
        }
        try await group.waitForAll()
    }
    return Double(workers * jobsPerWorker * 3) / (Double(now() - start) / 1e9)
}

let arguments = CommandLine.arguments
if arguments.count == 3 && arguments[1] == "--echo-server" { try echoServer(path: arguments[2]) }
guard arguments.count >= 2 else {
    print("usage: jobstore-bench DAEMON_BINARY [--calls N]")
    exit(2)
}
let calls = arguments.firstIndex(of: "--calls").flatMap { Int(arguments[$0 + 1]) } ?? 20000
let scratch = NSTemporaryDirectory() + "jobstore-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
if arguments.contains("--s3") {
    let mib = arguments.firstIndex(of: "--size-mib").flatMap { Int(arguments[$0 + 1]) } ?? 1024
    let partSize = arguments.firstIndex(of: "--part-size").map { arguments[$0 + 1] } ?? "50MiB"
    let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 3
    try await s3TransferBench(daemonBinary: arguments[1], scratch: scratch, bigSize: mib << 20, smallCount: 1000,
                              smallSize: 4096, partSize: partSize, rounds: max(1, rounds))
    try? FileManager.default.removeItem(atPath: scratch)  // exit() runs no defer
    exit(0)
}
let socket = scratch + "/d.sock"
let daemon = Process()
daemon.executableURL = URL(fileURLWithPath: arguments[1])
daemon.arguments = ["--socket", socket, "--log-level", "warning", "--cache-dir", scratch + "/cache"]
try daemon.run()
defer {
    daemon.terminate()
    daemon.waitUntilExit()
    try? FileManager.default.removeItem(atPath: scratch)
}
while (try? UnixSocket.connect(path: socket)).map({ close($0) }) == nil { usleep(20_000) }

print("empty call round trip (\(calls) calls after 1000 warm-up), this machine, one run:")
// Interleaved rounds, so that frequency scaling and noise hit every series alike.
var echoSamples: [Double] = [], rawSamples: [Double] = [], clientSamples: [Double] = []
let client = JobStoreClient(connection: try ClientConnection(path: socket))
for _ in 0..<4 {
    echoSamples += try rawEcho(calls: calls / 4, scratch: scratch)
    rawSamples += try rawPing(socket: socket, calls: calls / 4)
    clientSamples += try await clientPing(client, calls: calls / 4)
}
report("raw Unix socket echo (floor)", echoSamples)
report("daemon Ping, blocking frame I/O", rawSamples)
report("daemon Ping, Swift client (async)", clientSamples)

let locator = "local:\(scratch)/store"
_ = try await client.initialize(StoreRequest(locator: locator))
print("\nsmall jobs (2 KiB; create + load + update), local store with fsync:")
for workers in [1, 4, 16] {
    let rate = try await smallJobs(socket: socket, locator: locator, workers: workers, jobsPerWorker: 1200 / workers)
    print(String(format: "  %2d connections: %8.0f ops/s", workers, rate))
}
client.connection.close()
