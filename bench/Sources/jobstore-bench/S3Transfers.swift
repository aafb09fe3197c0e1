import Foundation
import JobStoreClient
import JobStoreWire
import S3

/// The S3 transfer benchmark: a big file written and read through the daemon (passed
/// descriptors, the way a worker hands over a file) and many small puts, next to boto3 and
/// awscli against the same S3 server in the same run (bench/s3_baselines.py).
func s3TransferBench(daemonBinary: String, scratch: String, bigSize: Int, smallCount: Int, smallSize: Int, partSize: String,
                     rounds: Int) async throws {
    let env = ProcessInfo.processInfo.environment
    guard let endpoint = env["JOBSTORE_TEST_S3_ENDPOINT"], let key = env["JOBSTORE_TEST_S3_ACCESS_KEY"],
          let secret = env["JOBSTORE_TEST_S3_SECRET_KEY"] else {
        print("set JOBSTORE_TEST_S3_* (tools/bench --s3 starts tools/dev-s3)")
        exit(2)
    }
    let socket = scratch + "/s3.sock"
    let daemon = Process()
    daemon.executableURL = URL(fileURLWithPath: daemonBinary)
    // Transfers themselves are measured here: no node cache (bench/cache measures that).
    daemon.arguments = ["--socket", socket, "--log-level", "warning", "--endpoint", endpoint, "--part-size", partSize, "--no-cache"]
        + (env["JOBSTORED_BENCH_ARGS"]?.split(separator: " ").map(String.init) ?? [])
    daemon.environment = env.filter { !$0.key.hasPrefix("AWS_") }.merging(
        ["AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_EC2_METADATA_DISABLED": "true"]) { $1 }
    try daemon.run()
    defer {
        daemon.terminate()
        daemon.waitUntilExit()
    }
    while (try? UnixSocket.connect(path: socket)).map({ close($0) }) == nil { usleep(20_000) }
    let client = JobStoreClient(connection: try ClientConnection(path: socket))
    defer { client.connection.close() }
    let name = "bench-\(UUID().uuidString.prefix(8).lowercased())"
    let locator = "aws:us-east-1:\(name)"
    _ = try await client.initialize(StoreRequest(locator: locator))

    // The big file: random bytes, written once (not timed).
    let bigPath = scratch + "/big.bin"
    let fd = open(bigPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var state: UInt64 = 0x1234_5678
    for _ in 0..<(bigSize >> 20) {
        for i in stride(from: 0, to: chunk.count, by: 8) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            withUnsafeBytes(of: state) { chunk.replaceSubrange(i..<i + 8, with: $0) }
        }
        _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
    close(fd)

    // Rounds interleave the daemon and the baselines, so that drift hits every series alike;
    // the table shows each series' median.
    var samples: [String: [Double]] = [:]
    var order: [String] = []
    var units: [String: (Double, String)] = [:]
    func record(_ row: (String, Double, String)) {
        if samples[row.0] == nil { order.append(row.0) }
        samples[row.0, default: []].append(row.1)
        let small = row.2.hasSuffix("puts/s")
        units[row.0] = small ? (Double(smallCount), "puts/s") : (mib, "MiB/s")
    }
    let mib = Double(bigSize) / 1_048_576
    var start: UInt64 = 0
    var seconds = 0.0
    for round in 0..<rounds {
        _ = round
        start = now()
        let input = open(bigPath, O_RDONLY)
        let file = try await client.writeFile(WriteFileRequest(locator: locator, basename: "big.bin"), fd: input)
        close(input)
        seconds = Double(now() - start) / 1e9
        record(("daemon WriteFile (fd)", seconds, String(format: "%.0f MiB/s", mib / seconds)))
        let outPath = scratch + "/big.out"
        let output = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        start = now()
        _ = try await client.readFile(ReadFileRequest(locator: locator, fileId: file.fileId), fd: output)
        seconds = Double(now() - start) / 1e9
        close(output)
        record(("daemon ReadFile (fd)", seconds, String(format: "%.0f MiB/s", mib / seconds)))
        let outSize = (try FileManager.default.attributesOfItem(atPath: outPath)[.size] as? Int) ?? -1
        guard outSize == bigSize else { throw JobStoreError(.dataLoss, "read back \(outSize) bytes, not \(bigSize)") }
        try? FileManager.default.removeItem(atPath: outPath)

        let body = [UInt8](repeating: 0x42, count: smallSize)
        // The floor under the daemon: the same PUTs from this process through S3Client directly.
        let credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret)
        let direct = S3Client(endpoint: .init(url: URL(string: endpoint)!, region: "us-east-1"), session: CurlSession(),
                              credentials: { credentials })
        start = now()
        for i in 0..<smallCount {
            try direct.send("PUT", bucket: name + "--toil", key: "direct/\(i)", headers: [("Content-MD5", Base64.encode(MD5.digest(body)))], body: body)
        }
        seconds = Double(now() - start) / 1e9
        record(("S3Client PUT small in-process (no daemon), 1 thread", seconds, String(format: "%.0f puts/s", Double(smallCount) / seconds)))
        for workers in [1, 16] {
            start = now()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<workers {
                    group.addTask {
                        let c = JobStoreClient(connection: try ClientConnection(path: socket))
                        defer { c.connection.close() }
                        for _ in stride(from: w, to: smallCount, by: workers) {
                            _ = try await c.writeFileStream(WriteFileRequest(locator: locator)) { try await $0.write(body) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            seconds = Double(now() - start) / 1e9
            record(("daemon WriteFileStream small, \(workers) conn", seconds, String(format: "%.0f puts/s", Double(smallCount) / seconds)))
        }

        // Baselines into a bucket of their own on the same server.
        let baselineBucket = name + "-baseline"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("s3_baselines.py").path
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["sh", "-c", "aws --endpoint-url \"$0\" --region us-east-1 s3 mb s3://\"$1\" >/dev/null && python3 \"$2\" \"$0\" \"$1\" \"$3\" \"$4\" \"$5\"; s=$?; aws --endpoint-url \"$0\" --region us-east-1 s3 rb --force s3://\"$1\" >/dev/null; exit $s",
                            endpoint, baselineBucket, script, bigPath, String(smallCount), String(smallSize)]
        python.environment = env.filter { !$0.key.hasPrefix("AWS_") }.merging(
            ["AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_EC2_METADATA_DISABLED": "true"]) { $1 }
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        if let baselines = try? JSONSerialization.jsonObject(with: data) as? [String: Double] {
            for (label, secs) in baselines.sorted(by: { $0.key < $1.key }) {
                let rate = label.contains("small") ? String(format: "%.0f puts/s", Double(smallCount) / secs)
                                                   : String(format: "%.0f MiB/s", mib / secs)
                record((label, secs, rate))
            }
        } else {
            print("baselines failed: \(String(decoding: data, as: UTF8.self))")
        }
    }
    _ = try await client.destroy(StoreRequest(locator: locator))
    try? FileManager.default.removeItem(atPath: bigPath)

    print("S3 transfers against SeaweedFS on 127.0.0.1 (\(bigSize >> 20) MiB file, \(smallCount) × \(smallSize) B puts, "
          + "part size \(partSize)), median of \(rounds) interleaved rounds:")
    print("| operation | seconds (median) | rate (median) | rate range |")
    print("|---|---|---|---|")
    for label in order {
        let sorted = samples[label]!.sorted()
        let (amount, unit) = units[label]!
        print(String(format: "| %@ | %.2f | %.0f %@ | %.0f–%.0f |", label, sorted[sorted.count / 2], amount / sorted[sorted.count / 2], unit,
                     amount / sorted.last!, amount / sorted.first!))
    }
}
