import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// jobstored's configuration layers (flags over JOBSTORED_* over the file), `--print-config`,
/// `--version`, JSON logs and systemd socket activation, on the real binary.
final class DaemonConfigurationTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "jobstored-test-config-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs jobstored to completion with exactly this environment (plus PATH and HOME).
    func daemon(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, errors: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
        p.arguments = arguments
        // No host configuration file (/etc/jobstored/jobstored.conf) unless the test names one.
        let base = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME"].contains($0.key) }
            .merging(["JOBSTORED_CONFIG": "/dev/null"]) { $1 }
        p.environment = base.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let errors = DataBox()
        let reader = Thread { errors.data = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errors.done { usleep(1000) }
        return (p.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors.data, as: UTF8.self))
    }

    func testFlagsBeatEnvironmentBeatFileAndSecretsAreMasked() throws {
        let file = directory + "/jobstored.conf"
        try """
        # a comment
        cache-size = "20GiB"   # trailing comment
        cache_min_free = 9
        allow-uid = 5
        allow-uid = 6
        url-expiry = 100
        no-cache = true
        endpoint = "http://admin:hunter2@127.0.0.1:9000"

        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try daemon(["--config", file, "--print-config", "--url-expiry", "300"], environment: [
            "JOBSTORED_CACHE_MIN_FREE": "7", "JOBSTORED_ALLOW_UID": "10,11", "JOBSTORED_FRAME_TIMEOUT": "12",
            "JOBSTORED_NOT_A_SETTING": "1",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "AWS_SESSION_TOKEN": "tok3n",
        ])
        XCTAssertEqual(run.status, 0, run.errors)
        let lines = run.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("cache-size = 20GiB  # file \(file):2"), run.output)
        XCTAssertTrue(lines.contains("cache-min-free = 7.0  # env JOBSTORED_CACHE_MIN_FREE"), run.output)
        XCTAssertTrue(lines.contains("allow-uid = 10  # env JOBSTORED_ALLOW_UID"), run.output)
        XCTAssertTrue(lines.contains("allow-uid = 11  # env JOBSTORED_ALLOW_UID"), run.output)
        XCTAssertFalse(lines.contains { $0.hasPrefix("allow-uid = 5") }, "the environment replaces the file's list")
        XCTAssertTrue(lines.contains("url-expiry = 300  # flag"), run.output)
        XCTAssertTrue(lines.contains("frame-timeout = 12.0  # env JOBSTORED_FRAME_TIMEOUT"), run.output)
        XCTAssertTrue(lines.contains("no-cache = true  # file \(file):7"), run.output)
        XCTAssertTrue(lines.contains("shutdown-deadline = 30.0  # default"), run.output)
        XCTAssertTrue(lines.contains("# warning: ignoring JOBSTORED_NOT_A_SETTING: jobstored has no such setting"), run.output)
        XCTAssertTrue(lines.contains("# configuration file: \(file)"), run.output)
        XCTAssertTrue(run.output.contains("\"http://****:****@127.0.0.1:9000\""), run.output)
        XCTAssertTrue(run.output.contains("access key AKIA****"), run.output)
        for secret in ["hunter2", "admin", "wJalrXUtnFEMI", "tok3n", "AKIAEXAMPLEKEY"] {
            XCTAssertFalse(run.output.contains(secret) || run.errors.contains(secret), "\(secret) printed")
        }
        // Every setting the table knows is printed, so none can be missing from the report.
        for name in ["socket", "log-level", "log-format", "allow-gid", "no-fsync", "takeover", "metrics", "s3-addressing",
                     "s3-max-connections", "part-size", "transfer-buffers", "part-concurrency", "s3-stall-seconds", "cache-dir",
                     "cache-trust-seconds"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix("\(name) = ") || $0.hasPrefix("# \(name) = ") }, "\(name) missing")
        }
        // The table and --help agree: every setting is a real option.
        let help = try daemon(["--help"]).output
        for name in ["socket", "log-level", "log-format", "allow-uid", "allow-gid", "local-root", "no-fsync", "shutdown-deadline", "frame-timeout",
                     "takeover", "metrics", "endpoint", "s3-addressing", "s3-max-connections", "part-size", "transfer-buffers",
                     "part-concurrency", "s3-stall-seconds", "url-expiry", "cache-dir", "cache-size", "cache-min-free",
                     "cache-trust-seconds", "no-cache", "config", "print-config"] {
            XCTAssertTrue(help.contains("--\(name)"), "--\(name) not in --help")
        }
    }

    func testBadConfigurationIsAUsageErrorNamingTheLine() throws {
        let file = directory + "/bad.conf"
        try "cache-size = 1GiB\ncache-sise = 2GiB\n".write(toFile: file, atomically: true, encoding: .utf8)
        let unknown = try daemon(["--config", file])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.errors.contains("\(file):2: unknown setting \"cache-sise\""), unknown.errors)
        try "no-cache = maybe\n".write(toFile: file, atomically: true, encoding: .utf8)
        let flag = try daemon(["--config", file, "--print-config"])
        XCTAssertEqual(flag.status, 64, flag.errors)
        XCTAssertTrue(flag.errors.contains("no-cache is a flag"), flag.errors)
        // Windows line endings read the same as Unix ones.
        try "cache-size = 3GiB # note\r\nno-cache = true\r\n".write(toFile: file, atomically: true, encoding: .utf8)
        let crlf = try daemon(["--config", file, "--print-config"])
        XCTAssertEqual(crlf.status, 0, crlf.errors)
        XCTAssertTrue(crlf.output.contains("cache-size = 3GiB  # file \(file):1"), crlf.output)
        XCTAssertTrue(crlf.output.contains("no-cache = true  # file \(file):2"), crlf.output)
        let missing = try daemon(["--print-config"], environment: ["JOBSTORED_CONFIG": directory + "/absent.conf"])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.errors.contains("absent.conf"), missing.errors)
        let badValue = try daemon(["--print-config"], environment: ["JOBSTORED_LOG_FORMAT": "xml"])
        XCTAssertEqual(badValue.status, 64, badValue.errors)
        XCTAssertTrue(badValue.errors.contains("--log-format must be text or json"), badValue.errors)
        let version = try daemon(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.output, ReleaseVersionProbe.version + "\n")
    }

    /// A daemon configured only by its environment and file serves where they say, and logs
    /// JSON lines.
    func testDaemonRunsFromEnvironmentAndFileWithJSONLogs() async throws {
        let socket = directory + "/env.sock"
        let file = directory + "/jobstored.conf"
        try "cache-dir = \(directory)/cache-from-file\nlog-format = json\nlog-level = info\nno-fsync = true\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(extraArguments: [], environment: [
            "JOBSTORED_SOCKET": socket, "JOBSTORED_CONFIG": file,
        ], captureLog: true, bare: true)
        defer { daemon.stop() }
        XCTAssertEqual(daemon.socket, socket)
        let client = try daemon.connect()
        let stats = try await client.stats()
        XCTAssertEqual(stats.cache?.directory, directory + "/cache-from-file")
        client.connection.close()
        daemon.process.terminate()
        daemon.process.waitUntilExit()
        let log = try String(contentsOfFile: daemon.logPath, encoding: .utf8)
        let lines = log.split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            XCTAssertNotNil(object["time"] as? String)
            XCTAssertNotNil(object["level"] as? String)
            XCTAssertEqual(object["label"] as? String, "jobstored")
            XCTAssertNotNil(object["message"] as? String)
        }
        XCTAssertTrue(log.contains("\"message\":\"listening on \(socket)\""), log)
        XCTAssertTrue(log.contains("configuration file \(file)"), log)
    }

    /// systemd socket activation: the daemon serves the socket it is passed, leaves it in place
    /// when it stops, and a connection made while it restarts is served by the next one.
    func testSocketActivationServesThePassedSocketAcrossRestarts() async throws {
        let socket = directory + "/activated.sock"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        launcher.arguments = ["python3", root.appendingPathComponent("Support/socket_activate.py").path, "--restart-delay", "1",
                              socket, DaemonProcess.binary,
                              "--no-cache", "--log-level", "warning", "--socket", directory + "/ignored.sock"]
        launcher.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBSTORED_") && !$0.key.hasPrefix("AWS_") }
            .merging(["JOBSTORED_CONFIG": "/dev/null"]) { $1 }
        let launcherLog = directory + "/launcher.log"
        FileManager.default.createFile(atPath: launcherLog, contents: nil)
        launcher.standardError = FileHandle(forWritingAtPath: launcherLog)
        try launcher.run()
        defer {
            if launcher.isRunning { kill(launcher.processIdentifier, SIGTERM); launcher.waitUntilExit() }
        }
        var connection: ClientConnection?
        for _ in 0..<200 where connection == nil {
            connection = try? ClientConnection(path: socket)
            if connection == nil { usleep(25_000) }
        }
        let first = try XCTUnwrap(connection)
        first.reconnectTimeout = 0
        _ = try await JobStoreClient(connection: first).ping()
        let pid = try daemonPID(launcherLog, index: 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/ignored.sock"), "--socket yields to the passed socket")
        first.close()

        // Stop this daemon: the socket stays (systemd owns it), and a connection made before
        // the next daemon starts is answered by it.
        kill(pid_t(pid), SIGTERM)
        var st = stat()
        // The launcher reports the exit, then waits a second before the next daemon: a
        // connection made now finds no daemon, only the socket systemd keeps.
        var exited = false
        for _ in 0..<200 where !exited {
            exited = ((try? String(contentsOfFile: launcherLog, encoding: .utf8)) ?? "").contains("socket_activate: pid exited with 0")
            if !exited { usleep(10_000) }
        }
        XCTAssertTrue(exited, "the first daemon exited cleanly")
        XCTAssertEqual(lstat(socket, &st), 0, "the socket outlives the daemon")
        let waiting = try ClientConnection(path: socket)
        let asked = Date()
        let stats = try await JobStoreClient(connection: waiting).stats()
        XCTAssertGreaterThan(Date().timeIntervalSince(asked), 0.3, "the call waited in the backlog for the next daemon")
        XCTAssertEqual(stats.connectionsTotal, 1, "a fresh daemon served the queued connection")
        let second = try daemonPID(launcherLog, index: 1)
        XCTAssertNotEqual(second, pid)
        waiting.close()
    }

    /// The pid of the launcher's `index`th daemon, from its log (the socket's peer credentials
    /// name the process that called listen: the launcher).
    func daemonPID(_ log: String, index: Int) throws -> Int32 {
        for _ in 0..<200 {
            let pids = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
                .compactMap { $0.hasPrefix("socket_activate: started pid ") ? Int32($0.split(separator: " ").last!) : nil }
            if pids.count > index { return pids[index] }
            usleep(25_000)
        }
        throw PlainHTTP.Failure(description: "no daemon \(index) in \(log)")
    }

    /// packaging/jobstored.conf.example stays valid: as shipped (all commented) and with every
    /// setting uncommented (each key a real setting, each value accepted).
    func testTheExampleConfigurationFileIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = root.appendingPathComponent("packaging/jobstored.conf.example").path
        let shipped = try daemon(["--config", example, "--print-config"])
        XCTAssertEqual(shipped.status, 0, shipped.errors)
        let text = try String(contentsOfFile: example, encoding: .utf8)
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let match = line.firstMatch(of: /^# ?([a-z0-9-]+ = .*)$/) else { return String(line) }
            return String(match.1)
        }.joined(separator: "\n")
        let file = directory + "/uncommented.conf"
        try uncommented.write(toFile: file, atomically: true, encoding: .utf8)
        let all = try daemon(["--config", file, "--print-config"])
        XCTAssertEqual(all.status, 0, all.errors)
        let fromFile = all.output.split(separator: "\n").filter { $0.contains("# file \(file):") }
        XCTAssertGreaterThanOrEqual(fromFile.count, 20, all.output)
    }
}
