import JobStoreClient
import JobStoreWire
import XCTest

final class StoreLifecycleTests: XCTestCase {
    var daemon: DaemonProcess!
    var client: JobStoreClient!

    override func setUp() async throws {
        daemon = try DaemonProcess()
        client = try daemon.connect()
    }

    override func tearDown() async throws {
        client.connection.close()
        daemon.stop()
    }

    func testHelloListsEveryMethodInIdOrder() async throws {
        let hello = try await client.hello(HelloRequest(protocolVersion: 1, clientName: "test"))
        XCTAssertEqual(hello.protocolVersion, WireLimits.protocolVersion)
        XCTAssertEqual(hello.methods, JobStoreMethod.allCases.map(\.name))
        XCTAssertEqual(hello.methods.first, "Hello")
        XCTAssertEqual(hello.maxDataBytes, UInt32(WireLimits.maxDataBytes))
    }

    func testPingAndStatsCountCalls() async throws {
        for _ in 0..<5 { _ = try await client.ping() }
        let stats = try await client.stats()
        XCTAssertEqual(stats.methods.first { $0.method == "Ping" }?.calls, 5)
        XCTAssertEqual(stats.connections, 1)
        XCTAssertEqual(stats.serverVersion, "0.1.0")
    }

    func testInitializeResumeExistsDestroy() async throws {
        let locator = daemon.locator()
        let store = StoreRequest(locator: locator)
        let awaited1 = try await client.storeExists(store).exists
        XCTAssertFalse(awaited1)
        await assertFails(.notFound, kind: .noSuchJobStore,
                          message: "The job store '\(locator)' does not exist, so there is nothing to restart.") {
            try await client.resume(store)
        }
        _ = try await client.initialize(store)
        let awaited2 = try await client.storeExists(store).exists
        XCTAssertTrue(awaited2)
        await assertFails(.alreadyExists, kind: .jobStoreExists) { try await client.initialize(store) }
        _ = try await client.resume(store)
        _ = try await client.createJob(JobBody(locator: locator, jobId: "j1", body: [1, 2, 3]))
        _ = try await client.destroy(store)
        let awaited3 = try await client.storeExists(store).exists
        XCTAssertFalse(awaited3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: String(locator.dropFirst("local:".count))))
        // Idempotent.
        _ = try await client.destroy(store)
        await assertFails(.notFound, kind: .noSuchJobStore) {
            try await client.loadJob(JobRequest(locator: locator, jobId: "j1"))
        }
    }

    func testDestroyNeverRemovesADirectoryThatIsNotAStore() async throws {
        let path = daemon.storeRoot + "/precious"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path + "/data.txt", contents: Data("keep".utf8))
        _ = try await client.destroy(StoreRequest(locator: "local:" + path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/data.txt"))
        await assertFails(.alreadyExists, kind: .jobStoreExists) {
            try await client.initialize(StoreRequest(locator: "local:" + path))
        }
    }

    func testBadLocatorsGiveToilsMessages() async throws {
        let regions = "dict_keys(['us-west-1', 'us-west-2', 'us-east-1', 'us-east-2', 'us-gov-west-1', 'ca-central-1', "
            + "'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-southeast-1', 'ap-southeast-2', 'ap-south-1', "
            + "'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-central-1', 'sa-east-1'])"
        let cases: [(String, String)] = [
            ("aws:us-east-1", "not enough values to unpack (expected 2, got 1)"),
            ("aws:us-east-1:a:b", "too many values to unpack (expected 2)"),
            ("aws:xx-east-1:abc", "AWS Region \"xx-east-1\" is not one of: \(regions)"),
            ("aws:us-east-1:ab", "AWS jobstore name must be between 3 and 56 chars: ab (len: 2)"),
            ("aws:us-east-1:" + String(repeating: "a", count: 57),
             "AWS jobstore name must be between 3 and 56 chars: \(String(repeating: "a", count: 57)) (len: 57)"),
            ("aws:us-east-1:Abc", "Invalid AWS jobstore name: 'Abc'.  Must contain only digits, lower-case letters, and hyphens.  Must also not start or end in a hyphen."),
            ("aws:us-east-1:-ab", "Invalid AWS jobstore name: '-ab'.  Must contain only digits, lower-case letters, and hyphens.  Must also not start or end in a hyphen."),
            ("aws:us-east-1:a--b", "AWS jobstore names may not contain '--': a--b"),
            ("local:relative/path", "A local job store path must be absolute: 'relative/path'."),
            ("local:/tmp/../etc", "A local job store path must name a directory without '.' or '..': '/tmp/../etc'."),
            ("nothing", "Invalid job store locator 'nothing': expected local:/PATH or aws:REGION:NAME."),
            ("gs:bucket", "Unsupported job store type 'gs' in 'gs:bucket': expected local:/PATH or aws:REGION:NAME."),
        ]
        for (locator, message) in cases {
            await assertFails(.invalidArgument, kind: .invalidLocator, message: message) {
                try await client.storeExists(StoreRequest(locator: locator))
            }
        }
    }

    /// No credentials anywhere: a clear error before any request leaves the node.
    func testAWSStoreWithoutCredentialsSaysWhichSourcesWereTried() async throws {
        let d = daemon.directory
        await assertFails(.permissionDenied,
                          message: "No AWS credentials found. Tried environment: AWS_ACCESS_KEY_ID is not set; "
                              + "shared files: profile default: \(d)/no-credentials not readable, \(d)/no-config not readable; "
                              + "ECS container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set; "
                              + "EC2 instance metadata: AWS_EC2_METADATA_DISABLED is true.") {
            try await client.storeExists(StoreRequest(locator: "aws:us-east-1:fine-name"))
        }
    }
}
