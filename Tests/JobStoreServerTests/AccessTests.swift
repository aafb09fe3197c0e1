import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// Who may connect, and what never leaks.
final class AccessTests: XCTestCase {
    /// Connects as `uid` (the test runs as root, so a child can drop to it), sends a Ping and
    /// prints the answer's status code, or "closed".
    func pingAs(uid: Int, groups: [Int] = [], socket: String) throws -> String {
        let script = """
        import os, socket, struct, sys
        os.setgroups(\(groups)); os.setgid(\(uid)); os.setuid(\(uid))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sys.argv[1])
        except OSError as e:
            print("connect", e.errno); sys.exit(0)
        try:
            s.sendall(struct.pack(">IIHBB", 0, 9, 1, 1, 0))
        except OSError:
            pass  # a refused peer may find the connection closed already; the refusal is queued
        try:
            head = s.recv(12)
        except OSError:
            head = b""
        
        print("closed" if len(head) < 12 else "status %d call %d" % (struct.unpack(">IIHBB", head)[2], struct.unpack(">IIHBB", head)[1]))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, socket]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs a program as `uid`, stderr into the output; "cannot exec" when `uid` may not run it
    /// (a checkout under a private directory).
    func runAs(uid: Int, _ command: [String]) throws -> (status: Int32, output: String) {
        let script = """
        import os, sys
        os.setgroups([]); os.setgid(\(uid)); os.setuid(\(uid))
        os.dup2(1, 2)
        try:
            os.execv(sys.argv[1], sys.argv[1:])
        except OSError as e:
            print("cannot exec", e); sys.exit(126)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + command
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBSTORED_") }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func testAnotherUserIsRefusedUnlessAllowed() throws {
        try XCTSkipUnless(getuid() == 0, "needs root to act as another user")
        let nobody = 65534
        let daemon = try DaemonProcess(captureLog: true)
        defer { daemon.stop() }
        // By default the socket's directory and file keep others out before any check.
        XCTAssertTrue(try pingAs(uid: nobody, socket: daemon.socket).hasPrefix("connect 13"), "EACCES")
        // Opened up by hand, the daemon's own check (SO_PEERCRED) still refuses the peer.
        chmod(daemon.directory, 0o755)
        chmod(daemon.socket, 0o666)
        XCTAssertEqual(try pingAs(uid: nobody, socket: daemon.socket), "status 7 call 0", "PERMISSION_DENIED")
        let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("refused connection") && log.contains("uid \(nobody)"), log)
        // The command line reports the refusal as such: exit 4 (permission denied), not 69.
        let cli = try runAs(uid: nobody, [CommandRunner.binary, "status", "--socket", daemon.socket])
        if !cli.output.contains("cannot exec") {
            XCTAssertEqual(cli.status, 4, cli.output)
            XCTAssertTrue(cli.output.contains("jobstore: error: jobstored refused this connection: uid \(nobody) may not use this daemon"), cli.output)
        }

        let allowing = try DaemonProcess(extraArguments: ["--allow-uid", "\(nobody)"])
        defer { allowing.stop() }
        chmod(allowing.directory, 0o755)
        chmod(allowing.socket, 0o666)
        XCTAssertEqual(try pingAs(uid: nobody, socket: allowing.socket), "status 0 call 9", "an allowed uid is served")

        // --allow-gid matches supplementary groups too (SO_PEERCRED gives the primary one only).
        let byGroup = try DaemonProcess(extraArguments: ["--allow-gid", "4242"])
        defer { byGroup.stop() }
        chmod(byGroup.directory, 0o755)
        chmod(byGroup.socket, 0o666)
        XCTAssertEqual(try pingAs(uid: nobody, groups: [4242], socket: byGroup.socket), "status 0 call 9", "a member of an allowed group")
        XCTAssertEqual(try pingAs(uid: nobody, groups: [4243], socket: byGroup.socket), "status 7 call 0", "a member of another group")
    }

    func testSecretsNeverReachLogsErrorsStatsOrMetrics() async throws {
        let env = ProcessInfo.processInfo.environment
        let secret = try XCTUnwrap(env["JOBSTORE_TEST_S3_SECRET_KEY"])
        let port = try MetricsEndpointTests.freePort()
        let daemon = try DaemonProcess.withS3(extraArguments: ["--log-level", "trace", "--metrics", "127.0.0.1:\(port)"], captureLog: true)
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        let sseKey = pattern(32, seed: 77)
        let wrongKey = pattern(32, seed: 78)
        let locator = "aws:us-east-1:jobstore-secrets-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.initialize(StoreRequest(locator: locator, sseKey: sseKey))
        let info = try await client.upload(WriteFileRequest(locator: locator, basename: "s", sseKey: sseKey), pattern(3000))
        _ = try await client.download(locator, info.fileId, sseKey: sseKey)
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j", body: [1], sseKey: sseKey))
        var messages: [String] = []
        do { _ = try await client.download(locator, info.fileId, sseKey: wrongKey) } catch { messages.append("\(error)") }
        do { _ = try await client.loadJob(JobRequest(locator: locator, jobId: "j", sseKey: wrongKey)) } catch { messages.append("\(error)") }
        do { _ = try await client.download(locator, info.fileId, sseKey: Array(sseKey.prefix(31))) } catch { messages.append("\(error)") }
        let stats = try await client.stats()
        let metrics = (try? PlainHTTP.get(URL(string: "http://127.0.0.1:\(port)/metrics")!).text) ?? ""
        XCTAssertTrue(metrics.contains("jobstored_"), "the metrics were scraped")
        _ = try await client.destroy(StoreRequest(locator: locator))
        XCTAssertEqual(messages.count, 3, "the wrong and the short key were refused")
        let log = (try? String(contentsOfFile: daemon.logPath, encoding: .utf8)) ?? ""
        XCTAssertFalse(log.isEmpty)
        let keyBase64 = Data(sseKey).base64EncodedString()
        let keyHex = sseKey.map { String(format: "%02x", $0) }.joined()
        let wrongBase64 = Data(wrongKey).base64EncodedString()
        let shortBase64 = Data(sseKey.prefix(31)).base64EncodedString()
        let everything = log + messages.joined() + String(decoding: stats.serialized(), as: UTF8.self) + metrics
        for needle in [secret, keyBase64, keyHex, wrongBase64, shortBase64, String(decoding: sseKey, as: UTF8.self)] {
            XCTAssertFalse(everything.contains(needle), "a secret appeared")
        }
    }

    /// `--local-root`: local: stores outside the roots are refused and nothing is created there.
    func testLocalStoresStayUnderTheLocalRoots() async throws {
        let daemon = try DaemonProcess(extraArguments: ["--local-root", "/nonexistent-root", "--local-root", NSTemporaryDirectory()])
        defer { daemon.stop() }
        let client = try daemon.connect()
        defer { client.connection.close() }
        _ = try await client.initialize(StoreRequest(locator: daemon.locator()))  // under the scratch directory in /tmp
        let outside = "/var/tmp/jobstored-outside-\(UUID().uuidString.prefix(8))"
        await assertFails(.permissionDenied) { try await client.initialize(StoreRequest(locator: "local:" + outside)) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside), "nothing created outside the roots")
        let sibling = String(NSTemporaryDirectory().dropLast()) + "x/store"  // "/tmpx/store": a prefix, not a parent
        await assertFails(.permissionDenied) { try await client.initialize(StoreRequest(locator: "local:" + sibling)) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: sibling))

        let relative = Process()
        relative.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
        relative.arguments = ["--local-root", "relative/dir", "--print-config"]
        relative.standardError = FileHandle.nullDevice
        relative.standardOutput = FileHandle.nullDevice
        try relative.run()
        relative.waitUntilExit()
        XCTAssertEqual(relative.terminationStatus, 64, "a relative root is a usage error")
    }
}
