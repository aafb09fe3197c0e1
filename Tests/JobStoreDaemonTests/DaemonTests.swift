import Foundation
import JobStoreClient
import JobStoreDaemon
import JobStoreWire
import Logging
import XCTest

/// A whole daemon in this process: started, called through the generated client, drained and
/// stopped, with no child process.
final class DaemonTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "jobstored-daemon-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func daemon(_ extra: [String] = []) throws -> Daemon {
        let options = try DaemonOptions.parse(["--socket", directory + "/d.sock", "--cache-dir", directory + "/cache",
                                               "--no-fsync", "--shutdown-deadline", "5"] + extra)
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return Daemon(configuration: try DaemonConfiguration(options, environment: [:]), logger: logger)
    }

    func testADaemonStartedInProcessServesCallsAndDrains() async throws {
        let daemon = try daemon()
        XCTAssertEqual(daemon.state, .idle)
        try daemon.start()
        XCTAssertEqual(daemon.state, .serving)
        XCTAssertEqual(daemon.socketPath, directory + "/d.sock")
        let client = JobStoreClient(connection: try ClientConnection(path: daemon.socketPath))
        _ = try await client.ping()
        let store = StoreRequest(locator: "local:" + directory + "/store")
        _ = try await client.initialize(store)
        let exists = try await client.storeExists(store).exists
        XCTAssertTrue(exists)
        let stats = try await client.stats()
        XCTAssertEqual(stats.methods.first { $0.method == "Ping" }?.calls, 1)
        XCTAssertThrowsError(try daemon.start(), "a daemon starts once")

        XCTAssertEqual(try daemon.drain(), 0, "no call was in flight")
        XCTAssertEqual(daemon.state, .stopped)
        XCTAssertEqual(try daemon.drain(), 0, "a second drain does nothing")
        try daemon.stop()
        XCTAssertThrowsError(try ClientConnection(path: directory + "/d.sock"), "nobody serves the socket after the drain")
    }

    func testAStartThatCannotListenFailsSayingWhereAndStops() throws {
        let blocker = directory + "/not-a-directory"
        XCTAssertTrue(FileManager.default.createFile(atPath: blocker, contents: Data()))
        let options = try DaemonOptions.parse(["--socket", blocker + "/d.sock", "--no-cache"])
        let daemon = Daemon(configuration: try DaemonConfiguration(options, environment: [:]), logger: Logger(label: "test"))
        XCTAssertThrowsError(try daemon.start()) { error in
            XCTAssertTrue("\(error)".contains(blocker + "/d.sock"), "\(error)")
        }
        XCTAssertEqual(daemon.state, .stopped)
        XCTAssertEqual(try daemon.drain(), 0)
    }

    /// A start that fails after its socket was bound lets go of it: no socket file is left for
    /// clients to find, and the same daemon configuration starts once the cause is gone.
    func testAStartThatFailsAfterBindingLeavesNoSocketBehind() throws {
        let taken = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(taken) }
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")),
                                  sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(taken, $0, length) == 0 && getsockname(taken, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        XCTAssertEqual(listen(taken, 1), 0)
        let port = UInt16(bigEndian: address.sin_port)
        let daemon = try daemon(["--metrics", "127.0.0.1:\(port)"])
        XCTAssertThrowsError(try daemon.start(), "the metrics port is taken")
        XCTAssertEqual(daemon.state, .stopped)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/d.sock"), "the bound socket was removed again")
        let next = try self.daemon()
        try next.start()
        try next.stop()
    }

    func testStopDrainsAServingDaemonFirst() async throws {
        let daemon = try daemon()
        try daemon.start()
        _ = try await JobStoreClient(connection: try ClientConnection(path: daemon.socketPath)).ping()
        try daemon.stop()
        XCTAssertEqual(daemon.state, .stopped)
        // The cache's lock is let go: a second daemon on the same directory gets the cache.
        let next = try self.daemon()
        try next.start()
        let stats = try await JobStoreClient(connection: try ClientConnection(path: next.socketPath)).stats()
        XCTAssertEqual(stats.cache?.enabled, true, "the cache directory was released")
        try next.stop()
    }
}
