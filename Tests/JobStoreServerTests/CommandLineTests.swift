import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

/// Every `jobstore` subcommand against a real daemon, as a shell user runs them: output, exit
/// status, `--json`, progress lines when stderr is not a terminal. Local stores here; the same
/// tests on an aws: store on SeaweedFS in `CommandLineOnS3Tests`.
class CommandLineTests: XCTestCase {
    var daemon: DaemonProcess!
    var client: JobStoreClient!
    var command: CommandRunner!
    var created: [String] = []
    class var onS3: Bool { false }

    override func setUp() async throws {
        daemon = Self.onS3 ? try DaemonProcess.withS3(extraArguments: ["--part-size", "5MiB"]) : try DaemonProcess()
        client = try daemon.connect()
        command = CommandRunner(socket: daemon.socket)
    }

    override func tearDown() async throws {
        for locator in created { _ = try? await client.destroy(StoreRequest(locator: locator)) }
        client?.connection.close()
        daemon?.stop()
    }

    /// A store name not used before, on this test's backend.
    func newLocator() -> String {
        let locator = Self.onS3 ? "aws:us-east-1:cli-\(UUID().uuidString.prefix(8).lowercased())" : daemon.locator()
        created.append(locator)
        return locator
    }

    func scratch(_ name: String) -> String { daemon.directory + "/" + name }

    func testInitJobsFilesCatAndDestroy() async throws {
        let locator = newLocator()
        let first = try command.run(["init", locator])
        XCTAssertEqual(first.status, 0, first.errors)
        XCTAssertEqual(first.lines, ["initialized \(locator)"])
        let again = try command.run(["init", locator])
        XCTAssertEqual(again.status, 3, "exists: exit 3")
        XCTAssertTrue(again.errors.hasPrefix("jobstore: error: "), again.errors)
        XCTAssertTrue(again.errors.contains("already exists"), again.errors)

        XCTAssertEqual(try command.run(["jobs", locator]).text, "", "no jobs yet")
        XCTAssertEqual((try jsonValue(try command.run(["jobs", locator, "--json"])) as? [Any])?.count, 0)
        var jobs: [String: Int] = [:]
        for size in [10, 2000] {
            let id = try await client.assignJobId(AssignJobIdRequest(locator: locator, jobName: "j")).jobId
            _ = try await client.createJob(JobBody(locator: locator, jobId: id, body: pattern(size)))
            jobs[id] = size
        }
        let listed = try command.run(["jobs", locator])
        XCTAssertEqual(Set(listed.lines), Set(jobs.map { "\($0.key)\t\($0.value)" }))
        let listedJSON = try XCTUnwrap(try jsonValue(try command.run(["jobs", locator, "--json"])) as? [[String: Any]])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: listedJSON.map { ($0["job_id"] as! String, $0["size"] as! Int) }), jobs)

        // A file belonging to a job, one with hints, one from stdin.
        let job = jobs.keys.sorted()[0]
        let bytes = pattern(3 << 20, seed: 3)
        XCTAssertTrue(FileManager.default.createFile(atPath: scratch("input.bin"), contents: Data(bytes)))
        let owned = try command.run(["cp", locator, scratch("input.bin"), "store:", "--job", job, "-q"])
        XCTAssertEqual(owned.status, 0, owned.errors)
        let ownedID = try XCTUnwrap(owned.lines.first)
        XCTAssertEqual(owned.errors, "", "--quiet: no progress")
        let hinted = try command.run(["cp", locator, "-", "store:", "--hint", "wf", "--hint", "step", "-q"], input: Data("hi\n".utf8))
        XCTAssertEqual(hinted.lines, ["wf/step/files/stream"], hinted.errors)

        let files = try command.run(["files", locator])
        XCTAssertEqual(Set(files.lines), ["\(ownedID)\t\(bytes.count)", "wf/step/files/stream\t3"])
        let jobFiles = try XCTUnwrap(try jsonValue(try command.run(["files", locator, "--job", job, "--json"])) as? [[String: Any]])
        XCTAssertEqual(jobFiles.count, 1)
        XCTAssertEqual(jobFiles.first?["file_id"] as? String, ownedID)
        XCTAssertEqual(jobFiles.first?["size"] as? Int, bytes.count)
        XCTAssertEqual(try command.run(["files", locator, "--job", jobs.keys.sorted()[1]]).text, "", "the other job has none")
        XCTAssertEqual(try command.run(["files", locator, "--job", "no-such-job"]).status, 2)

        let cat = try command.run(["cat", locator, ownedID])
        XCTAssertEqual(cat.status, 0, cat.errors)
        XCTAssertEqual([UInt8](cat.output), bytes)
        XCTAssertEqual(try command.run(["cat", locator, "wf/step/files/stream"]).text, "hi\n")
        let missing = try command.run(["cat", locator, "00000000-0000-0000-0000-000000000000"])
        XCTAssertEqual(missing.status, 2, "no such file: exit 2")
        XCTAssertTrue(missing.errors.hasPrefix("jobstore: error: "), missing.errors)

        // Deleting the job deletes its file (written with --job); the listing follows.
        _ = try await client.deleteJob(JobRequest(locator: locator, jobId: job))
        XCTAssertEqual(try command.run(["files", locator]).lines, ["wf/step/files/stream\t3"])

        let destroyed = try command.run(["destroy", locator, "--yes", "--json"])
        XCTAssertEqual(destroyed.text, "{\"destroyed\":true,\"locator\":\"\(locator)\"}\n")
        XCTAssertEqual(try command.run(["jobs", locator]).status, 2, "no such store: exit 2")
        XCTAssertEqual(try command.run(["destroy", locator, "--yes"]).status, 2)
        let initJSON = try command.run(["init", locator, "--json"])
        XCTAssertEqual(initJSON.text, "{\"initialized\":true,\"locator\":\"\(locator)\"}\n")
    }

    func testCopyBothWaysWithProgressLinesAndAtomicDownloads() async throws {
        let locator = newLocator()
        XCTAssertEqual(try command.run(["init", locator]).status, 0)
        let bytes = pattern(6 << 20 + 123, seed: 9)
        let source = scratch("tool.sh")
        XCTAssertTrue(FileManager.default.createFile(atPath: source, contents: Data(bytes), attributes: [.posixPermissions: 0o755]))

        let up = try command.run(["cp", locator, source, "store:", "--progress-interval", "0"])
        XCTAssertEqual(up.status, 0, up.errors)
        let id = try XCTUnwrap(up.lines.first)
        // Not a terminal: plain lines, one per 1-MiB chunk at interval 0, then the total.
        let progress = up.errors.split(separator: "\n").map(String.init)
        XCTAssertGreaterThanOrEqual(progress.count, 7, up.errors)
        XCTAssertTrue(progress.contains { $0.hasPrefix("jobstore: 1048576 of \(bytes.count) bytes (17%)") }, up.errors)
        XCTAssertTrue(progress.dropLast().allSatisfy { $0.hasPrefix("jobstore: ") && $0.contains(" MiB/s") && $0.contains("ETA") }, up.errors)
        XCTAssertTrue(progress.last?.hasPrefix("jobstore: copied \(bytes.count) bytes in ") == true, up.errors)
        XCTAssertFalse(up.errors.contains("\r"), "no terminal redraws in a pipe")

        // Download: the executable bit comes back; a directory takes the file's name.
        let out = scratch("out.sh")
        let down = try command.run(["cp", locator, "store:\(id)", out, "--json"])
        let answer = try XCTUnwrap(try jsonValue(down) as? [String: Any])
        XCTAssertEqual(answer["bytes"] as? Int, bytes.count)
        XCTAssertEqual(answer["executable"] as? Bool, true)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))), bytes)
        let mode = try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int ?? 0
        XCTAssertEqual(mode & 0o100, 0o100, "executable bit kept")
        XCTAssertTrue(down.errors.contains("jobstore: copied \(bytes.count) bytes"), down.errors)
        try FileManager.default.createDirectory(atPath: scratch("dir"), withIntermediateDirectories: true)
        XCTAssertEqual(try command.run(["cp", locator, "store:\(id)", scratch("dir"), "-q"]).status, 0)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch("dir/\(id)")))), bytes)

        // Replacing the content of an existing file; stdout as a destination.
        let update = try command.run(["cp", locator, "-", "store:\(id)", "-q"], input: Data("new content".utf8))
        XCTAssertEqual(update.status, 0, update.errors)
        XCTAssertEqual(try command.run(["cp", locator, "store:\(id)", "-", "-q"]).text, "new content")

        // A failed download leaves the old local file and no debris.
        let before = try Data(contentsOf: URL(fileURLWithPath: out))
        let failed = try command.run(["cp", locator, "store:ffffffff-0000-0000-0000-000000000000", out, "-q"])
        XCTAssertEqual(failed.status, 2, failed.errors)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), before)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: daemon.directory).contains { $0.contains(".jobstore-") })

        // Replacing a local file keeps its permission bits (a 0600 file stays private).
        chmod(out, 0o600)
        XCTAssertEqual(try command.run(["cp", locator, "store:\(id)", out, "-q"]).status, 0)
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int ?? 0) & 0o777, 0o600)
        // A destination that cannot be replaced (a directory in the way): exit 1, no debris.
        try FileManager.default.createDirectory(atPath: scratch("blocked/\(id)/inner"), withIntermediateDirectories: true)
        let blocked = try command.run(["cp", locator, "store:\(id)", scratch("blocked"), "-q"])
        XCTAssertEqual(blocked.status, 1, blocked.errors)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch("blocked")), [id])

        // Shared files both ways, and cat --shared.
        XCTAssertEqual(try command.run(["cp", locator, "-", "shared:settings.txt", "-q"], input: Data("a=1\n".utf8)).status, 0)
        XCTAssertEqual(try command.run(["cat", locator, "settings.txt", "--shared"]).text, "a=1\n")
        XCTAssertEqual(try command.run(["cp", locator, "shared:settings.txt", scratch("settings"), "-q"]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: scratch("settings"), encoding: .utf8), "a=1\n")

        // Usage errors: exit 64 before anything is sent.
        XCTAssertEqual(try command.run(["cp", locator, source, scratch("x")]).status, 64, "neither side in the store")
        XCTAssertEqual(try command.run(["cp", locator, "store:", scratch("x")]).status, 64, "store: is a new file")
        XCTAssertEqual(try command.run(["cp", locator, scratch("nope"), "store:"]).status, 2, "missing local file")
    }

    /// On a terminal the progress is one line redrawn in place (carriage return, erase line, a
    /// bar with bytes, rate and ETA), cleared before the last line.
    func testProgressIsABarRedrawnInPlaceOnATerminal() async throws {
        let locator = newLocator()
        XCTAssertEqual(try command.run(["init", locator]).status, 0)
        let source = scratch("bar.bin")
        XCTAssertTrue(FileManager.default.createFile(atPath: source, contents: Data(pattern(4 << 20))))
        // stderr on a pseudo-terminal (Python's pty), stdout on a pipe.
        let script = """
        import os, pty, subprocess, sys
        master, slave = pty.openpty()
        p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out = p.stdout.read()
        p.wait()
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        sys.stdout.write(repr((p.returncode, out.decode(), data.decode())))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, CommandRunner.binary, "cp", locator, source, "store:", "--progress-interval", "0",
                       "--socket", daemon.socket]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertTrue(text.hasPrefix("(0, '"), text)
        XCTAssertTrue(text.contains("\\r\\x1b[K[###############...............] 2.0 MiB of 4.0 MiB (50%), "), text)
        XCTAssertTrue(text.contains(" MiB/s, ETA "), text)
        XCTAssertTrue(text.contains("\\r\\x1b[Kjobstore: copied 4194304 bytes in "), "the bar is cleared before the last line: \(text)")
    }

    func testLogsURLStatusAndErrors() async throws {
        let locator = newLocator()
        XCTAssertEqual(try command.run(["init", locator]).status, 0)
        for text in ["first", "second", "third"] {
            _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array(text.utf8)))
            usleep(2000)
        }
        XCTAssertEqual(try command.run(["logs", locator, "--all"]).lines, ["first", "second", "third"])
        let unread = try command.run(["logs", locator, "--json"])
        XCTAssertEqual(unread.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] },
                       [["message": "first"], ["message": "second"], ["message": "third"]])
        XCTAssertEqual(try command.run(["logs", locator]).text, "", "read before: not again")
        XCTAssertEqual(try command.run(["logs", locator, "--all"]).lines.count, 3, "--all marks nothing and sees everything")

        // --follow prints messages written after it started.
        let followed = scratch("followed.txt")
        let follower = try command.start(["logs", locator, "--all", "--follow", "--poll-interval", "0.1"], outputPath: followed)
        defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }
        func output(containing text: String) -> String {
            let deadline = Date().addingTimeInterval(20)
            var seen = ""
            while Date() < deadline {
                seen = (try? String(contentsOfFile: followed, encoding: .utf8)) ?? ""
                if seen.contains(text) { break }
                usleep(50_000)
            }
            return seen
        }
        // Only once the follower has printed what was there does a new message arrive: it
        // must come from a later poll.
        XCTAssertTrue(output(containing: "third").hasSuffix("third\n"))
        _ = try await client.writeLogs(WriteLogsRequest(locator: locator, message: Array("fourth".utf8)))
        XCTAssertEqual(output(containing: "fourth").split(separator: "\n"), ["first", "second", "third", "fourth"])
        usleep(300_000)
        XCTAssertEqual(output(containing: "fourth").split(separator: "\n").count, 4, "the overlap re-lists; nothing is printed twice")
        kill(follower.processIdentifier, SIGKILL)
        follower.waitUntilExit()

        // url: a URL that reads the file's bytes.
        let id = try await client.upload(WriteFileRequest(locator: locator), Array("url body".utf8)).fileId
        let url = try command.run(["url", locator, id, "--expires", "600"])
        XCTAssertEqual(url.status, 0, url.errors)
        let link = try XCTUnwrap(URL(string: try XCTUnwrap(url.lines.first)))
        if Self.onS3 {
            XCTAssertTrue(link.absoluteString.hasPrefix("http://127.0.0.1"), link.absoluteString)
            XCTAssertTrue(link.absoluteString.contains("X-Amz-Expires=600"), link.absoluteString)
        } else {
            XCTAssertEqual(link.scheme, "file")
        }
        let fetched = Self.onS3 ? try PlainHTTP.get(link).body : try Data(contentsOf: link)
        XCTAssertEqual(fetched, Data("url body".utf8))
        let urlJSON = try XCTUnwrap(try jsonValue(try command.run(["url", locator, id, "--json"])) as? [String: String])
        XCTAssertNotNil(urlJSON["url"])
        XCTAssertEqual(try command.run(["url", locator, "ffffffff-0000-0000-0000-000000000000"]).status, 2)

        // Exit statuses a script relies on.
        let status = try command.run(["status", "--json"])
        XCTAssertNotNil((try jsonValue(status) as? [String: Any])?["server_version"])
        XCTAssertEqual(try command.run(["ping"]).status, 0)
        XCTAssertEqual(try command.run(["jobs", "bogus:locator"]).status, 64, "invalid locator: usage")
        let unreachable = try command.run(["status", "--socket", scratch("none.sock")], socketOption: false)
        XCTAssertEqual(unreachable.status, 69, unreachable.errors)
        XCTAssertTrue(unreachable.errors.hasPrefix("jobstore: error: cannot reach jobstored"), unreachable.errors)
        XCTAssertEqual(try command.run(["files", "local:\(daemon.directory)/absent"]).status, 2)
        XCTAssertEqual(try command.run(["frobnicate"]).status, 64, "unknown subcommand")
        XCTAssertEqual(try command.run(["logs", locator, "--follow", "--poll-interval", "nan"]).status, 64)
    }
}

/// The same commands on an aws: store on SeaweedFS (presigned URLs, multipart uploads).
final class CommandLineOnS3Tests: CommandLineTests {
    override class var onS3: Bool { true }

    /// `--sse-key FILE`: the command reads the key and sends its bytes; without it, or with
    /// another, the store's objects cannot be read; a 31-byte file is Toil's error, exit 1.
    func testSSEKeyFilesAreReadByTheCommand() async throws {
        let locator = newLocator()
        let keyFile = scratch("sse.key"), otherFile = scratch("other.key"), shortFile = scratch("short.key")
        FileManager.default.createFile(atPath: keyFile, contents: Data(pattern(32, seed: 3)))
        FileManager.default.createFile(atPath: otherFile, contents: Data(pattern(32, seed: 4)))
        FileManager.default.createFile(atPath: shortFile, contents: Data(pattern(31)))
        XCTAssertEqual(try command.run(["init", locator, "--sse-key", keyFile]).status, 0)
        let source = scratch("secret.txt")
        FileManager.default.createFile(atPath: source, contents: Data("only with the key\n".utf8))
        let copied = try command.run(["cp", locator, source, "store:", "-q", "--sse-key", keyFile])
        XCTAssertEqual(copied.status, 0, copied.errors)
        let id = copied.text.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try command.run(["cat", locator, id, "--sse-key", keyFile]).text, "only with the key\n")
        for refused in [try command.run(["cat", locator, id]), try command.run(["cat", locator, id, "--sse-key", otherFile])] {
            XCTAssertEqual(refused.status, 4, refused.errors)
            XCTAssertTrue(refused.errors.contains("Your AWS encryption key is most likely configured incorrectly"), refused.errors)
        }
        let short = try command.run(["cat", locator, id, "--sse-key", shortFile])
        XCTAssertNotEqual(short.status, 0)
        XCTAssertTrue(short.errors.contains("Check that \(shortFile) is the path to a real SSE key. (Key length 31 != 32)"), short.errors)
        XCTAssertTrue(try command.run(["files", locator, "--sse-key", keyFile]).text.contains(id))
    }

    override func testInitJobsFilesCatAndDestroy() async throws { try await super.testInitJobsFilesCatAndDestroy() }
    override func testCopyBothWaysWithProgressLinesAndAtomicDownloads() async throws {
        try await super.testCopyBothWaysWithProgressLinesAndAtomicDownloads()
    }
    override func testLogsURLStatusAndErrors() async throws { try await super.testLogsURLStatusAndErrors() }
}
