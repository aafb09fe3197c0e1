import Foundation
import JobStoreClient
import JobStoreWire
import XCTest

final class ShutdownTests: XCTestCase {
    /// SIGTERM while an upload is open: the upload is cancelled and leaves nothing, the daemon
    /// exits cleanly and removes its socket.
    func testSIGTERMCancelsOpenUploadsAndExitsCleanly() async throws {
        let daemon = try DaemonProcess()
        let client = try daemon.connect()
        let locator = daemon.locator()
        _ = try await client.initialize(StoreRequest(locator: locator))
        let kept = try await client.upload(WriteFileRequest(locator: locator), [1, 2, 3])
        let started = expectation(description: "upload started")
        let upload = Task {
            try await client.writeFileStream(WriteFileRequest(locator: locator, basename: "partial")) { upload in
                try await upload.write(pattern(2 << 20))
                started.fulfill()
                try await Task.sleep(nanoseconds: 1_000_000_000)
                try await upload.write([1])
            }
        }
        await fulfillment(of: [started], timeout: 10)
        try await Task.sleep(nanoseconds: 100_000_000)
        kill(daemon.process.processIdentifier, SIGTERM)
        do {
            _ = try await upload.value
            XCTFail("the upload should not complete")
        } catch let error as JobStoreError {
            XCTAssertTrue([.cancelled, .unavailable].contains(error.code), "\(error)")
        }
        daemon.process.waitUntilExit()
        XCTAssertEqual(daemon.process.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socket))
        let root = String(locator.dropFirst("local:".count))
        let objects = try FileManager.default.subpathsOfDirectory(atPath: root + "/objects").filter { $0.hasSuffix(".obj") }
        XCTAssertEqual(objects, ["files-flat.d/\(kept.fileId).d/stream.obj"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/versions").count, 1)
        client.connection.close()
        daemon.stop()
    }

    func testASecondDaemonRefusesALiveSocket() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let second = Process()
        second.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
        second.arguments = ["--socket", daemon.socket, "--log-level", "critical"]
        try second.run()
        second.waitUntilExit()
        XCTAssertEqual(second.terminationStatus, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.socket))
    }

    func testANewDaemonTakesOverTheSocketWhileTheOldOneDrains() async throws {
        let scratch = NSTemporaryDirectory() + "takeover-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let cacheDir = scratch + "/cache"
        // Both serve metrics on one port: the new daemon gets it when the old one lets go.
        let port = try MetricsEndpointTests.freePort()
        let metrics = ["--metrics", "127.0.0.1:\(port)"]
        let old = try DaemonProcess(extraArguments: ["--cache-dir", cacheDir] + metrics)
        defer { old.stop() }
        let early = try old.connect()
        let locator = old.locator()
        _ = try await early.initialize(StoreRequest(locator: locator))
        let before = try await early.stats()
        XCTAssertEqual(before.cache?.enabled, true)

        let new = try DaemonProcess(socket: old.socket, extraArguments: ["--takeover", "--cache-dir", cacheDir] + metrics)
        defer { new.stop() }
        // The old daemon drains and exits by itself, leaving the socket path to the new one.
        let deadline = Date().addingTimeInterval(30)
        while old.process.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(old.process.isRunning, "the old daemon exits after SIGTERM")
        XCTAssertEqual(old.process.terminationStatus, 0, "it drained in time")
        XCTAssertTrue(FileManager.default.fileExists(atPath: old.socket), "the path is still served")

        let late = try new.connect()
        defer { late.connection.close() }
        let after = try await late.stats()
        XCTAssertEqual(after.connectionsTotal, 1, "a new connection reaches the new daemon")
        XCTAssertEqual(after.cache?.enabled, true, "which took over the cache once the old one let go")
        _ = try await late.resume(StoreRequest(locator: locator))
        early.connection.close()
        var page: PlainHTTP.Response?
        for _ in 0..<100 where page == nil {
            page = try? PlainHTTP.get(URL(string: "http://127.0.0.1:\(port)/metrics")!)
            if page == nil { usleep(100_000) }
        }
        let samples = MetricsEndpointTests.samples(try XCTUnwrap(page, "the new daemon serves the metrics port").text)
        XCTAssertEqual(samples["jobstored_rpc_calls_total{method=\"Resume\"}"], 1, "from the new daemon")
    }

    func testTheSwiftClientReconnectsAfterTheDaemonRestarts() async throws {
        let first = try DaemonProcess()
        defer { first.stop() }
        let client = try first.connect()
        defer { client.connection.close() }
        let locator = first.locator()
        _ = try await client.initialize(StoreRequest(locator: locator))
        _ = try await client.createJob(JobBody(locator: locator, jobId: "kept", body: [1, 2, 3]))
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        usleep(100_000)
        client.connection.reconnectTimeout = 0.3
        await assertFails(.unavailable) { try await client.ping() }  // no daemon: UNAVAILABLE after the wait
        client.connection.reconnectTimeout = 10
        let second = try DaemonProcess(socket: first.socket)
        defer { second.stop() }
        let body = try await client.loadJob(JobRequest(locator: locator, jobId: "kept")).body
        XCTAssertEqual(body, [1, 2, 3], "the same client object works again")
    }

    func testSocketIsPrivate() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        var st = stat()
        XCTAssertEqual(stat(daemon.socket, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
    }

    /// A daemon outside our PID namespace (the host's, seen from a pod) is reported with pid
    /// 0: taking over its socket must not signal pid 0, which is the new daemon's own process
    /// group. The new daemon serves; the old one is left for its owner to stop.
    func testTakingOverFromOutsideThePIDNamespaceSignalsNobody() throws {
        let old = try DaemonProcess(extraArguments: ["--no-cache"])
        defer { old.stop() }
        let log = old.directory + "/new.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let new = Process()
        new.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        new.arguments = ["--pid", "--fork", "--kill-child=SIGTERM", DaemonProcess.binary, "--socket", old.socket, "--takeover",
                         "--no-cache", "--no-fsync", "--log-level", "info"]
        new.environment = ["JOBSTORED_CONFIG": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true", "PATH": "/usr/bin:/bin"]
        new.standardError = FileHandle(forWritingAtPath: log)
        try new.run()
        // unshare ignores SIGTERM while it waits; its end sends the daemon SIGTERM (--kill-child).
        defer { if new.isRunning { kill(new.processIdentifier, SIGKILL); new.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(10)
        var text = ""
        while !text.contains("listening on") && new.isRunning && Date() < deadline {
            usleep(50_000)
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        usleep(500_000)
        XCTAssertTrue(new.isRunning, "the new daemon did not signal its own process group: \(text)")
        XCTAssertTrue(old.process.isRunning, "the old daemon, whose pid is not visible, was not signalled")
        XCTAssertTrue(text.contains("whose pid is not visible here"), text)
        let fd = try UnixSocket.connect(path: old.socket)
        close(fd)
    }
}
