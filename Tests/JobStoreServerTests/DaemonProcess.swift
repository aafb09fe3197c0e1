import Foundation
import JobStoreClient
import JobStoreWire
import ObjectStore
import S3
import XCTest

/// A real jobstored process for a test: its own socket and scratch directory, stopped and
/// cleaned up when the test ends.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let directory: String
    let socket: String
    let storeRoot: String

    static var binary: String {
        if let explicit = ProcessInfo.processInfo.environment["JOBSTORED_BIN"] { return explicit }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for candidate in [".build/debug/jobstored", ".build/release/jobstored"] {
            let path = root.appendingPathComponent(candidate).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return root.appendingPathComponent(".build/debug/jobstored").path
    }

    /// The daemon's stderr, when the test asked to keep it (`captureLog`).
    var logPath: String { directory + "/daemon.log" }

    /// - Parameter bare: pass only `extraArguments` (the socket must then come from
    ///   `JOBSTORED_SOCKET` in `environment`): for tests of the configuration layers.
    init(socket explicitSocket: String? = nil, extraArguments: [String] = [], environment: [String: String] = [:],
         captureLog: Bool = false, bare: Bool = false) throws {
        directory = NSTemporaryDirectory() + "jobstored-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socket = bare ? environment["JOBSTORED_SOCKET"] ?? "" : explicitSocket ?? directory + "/d.sock"
        storeRoot = directory + "/stores"
        try FileManager.default.createDirectory(atPath: storeRoot, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        // Each daemon caches in its scratch directory unless the test says otherwise.
        let cacheArguments = extraArguments.contains("--cache-dir") || extraArguments.contains("--no-cache")
            ? [] : ["--cache-dir", directory + "/cache"]
        process.arguments = bare ? extraArguments : ["--socket", socket, "--no-fsync", "--log-level", "warning"] + cacheArguments + extraArguments
        if captureLog {
            FileManager.default.createFile(atPath: directory + "/daemon.log", contents: nil)
            process.standardError = FileHandle(forWritingAtPath: directory + "/daemon.log")
        } else {
            process.standardError = FileHandle.standardError
        }
        // Only the AWS settings a test gives: an inherited credential or endpoint must never
        // send a test's traffic anywhere but the local S3 server.
        // Nor may the daemon look for credentials in the developer's files or on 169.254.x.
        let inherited = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") && !$0.key.hasPrefix("JOBSTORED_") }
        // Nor a jobstored configuration file of the host's.
        let isolated = ["AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": directory + "/no-credentials",
                        "AWS_CONFIG_FILE": directory + "/no-config", "JOBSTORED_CONFIG": "/dev/null"]
        process.environment = inherited.merging(isolated) { $1 }.merging(environment) { $1 }
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let fd = try? UnixSocket.connect(path: socket) {
                close(fd)
                return
            }
            usleep(20_000)
        }
        stop()
        throw JobStoreError(.unavailable, "daemon did not start listening on \(socket)")
    }

    /// A daemon whose aws: stores live on the test S3 server (`tools/dev-s3`).
    static func withS3(endpointVariable: String = "JOBSTORE_TEST_S3_ENDPOINT", endpoint explicit: String? = nil,
                       extraArguments: [String] = [], captureLog: Bool = false) throws -> DaemonProcess {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = explicit ?? env[endpointVariable], let key = env["JOBSTORE_TEST_S3_ACCESS_KEY"],
              let secret = env["JOBSTORE_TEST_S3_SECRET_KEY"] else {
            XCTFail("JOBSTORE_TEST_S3_* not set: run eval \"$(tools/dev-s3 start)\" first (tools/test does)")
            throw JobStoreError(.unavailable, "no test S3 server")
        }
        // The TLS endpoint of tools/dev-s3 (stunnel4 in front of SeaweedFS) has a CA of its own.
        let ca = explicit == nil && endpoint.hasPrefix("https:") ? env["JOBSTORE_TEST_S3_CA_BUNDLE"].map { ["--ca-bundle", $0] } ?? [] : []
        return try DaemonProcess(extraArguments: ["--endpoint", endpoint] + ca + extraArguments,
                                 environment: ["AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret], captureLog: captureLog)
    }

    /// Direct access to the test S3 server (SeaweedFS), to look behind the daemon's back.
    static func testS3Store(pool: BufferPool = BufferPool(partSize: S3ObjectStore.defaultPartSize, capacity: 8)) -> S3ObjectStore {
        let env = ProcessInfo.processInfo.environment
        let credentials = AWSCredentials(accessKeyID: env["JOBSTORE_TEST_S3_ACCESS_KEY"] ?? "", secretAccessKey: env["JOBSTORE_TEST_S3_SECRET_KEY"] ?? "")
        let endpoint = URL(string: env["JOBSTORE_TEST_S3_ENDPOINT"] ?? "http://127.0.0.1:1")!
        return S3ObjectStore(client: S3Client(endpoint: .init(url: endpoint, region: "us-east-1"), session: CurlSession(),
                                              credentials: { credentials }), pool: pool)
    }

    func connect() throws -> JobStoreClient {
        JobStoreClient(connection: try ClientConnection(path: socket))
    }

    /// A fresh local locator under this daemon's scratch directory.
    func locator(_ name: String = UUID().uuidString.prefix(8).lowercased()) -> String {
        "local:\(storeRoot)/\(name)"
    }

    /// SIGTERM, wait, and remove the scratch directory. Returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
        return process.terminationStatus
    }

    deinit { stop() }
}

/// Asserts that `body` fails with the given status code (and kind, when given).
func assertFails<T>(_ code: StatusCode, kind: ErrorKind? = nil, message: String? = nil,
                    file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> T) async {
    do {
        _ = try await body()
        XCTFail("expected \(code.name), got success", file: file, line: line)
    } catch let error as JobStoreError {
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        if let kind { XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line) }
        if let message { XCTAssertEqual(error.message, message, file: file, line: line) }
    } catch {
        XCTFail("expected JobStoreError \(code.name), got \(error)", file: file, line: line)
    }
}

/// Deterministic test bytes.
func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var x = UInt32(seed) &* 2654435761 | 1
    for i in 0..<count {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}

extension JobStoreClient {
    func upload(_ request: WriteFileRequest, _ bytes: [UInt8], chunk: Int = 300_000) async throws -> FileInfo {
        try await writeFileStream(request) { upload in
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                try await upload.write(Array(bytes[offset..<end]))
                offset = end
            }
        }
    }

    func download(_ locator: String, _ id: String, sseKey: [UInt8] = []) async throws -> [UInt8] {
        var out: [UInt8] = []
        _ = try await readFileStream(FileRequest(locator: locator, fileId: id, sseKey: sseKey)) { out.append(contentsOf: $0) }
        return out
    }

    func writeShared(_ locator: String, _ name: String, _ bytes: [UInt8], sseKey: [UInt8] = [], unencrypted: Bool = false) async throws {
        _ = try await writeSharedFileStream(SharedFileRequest(locator: locator, name: name, unencrypted: unencrypted, sseKey: sseKey)) {
            try await $0.write(bytes)
        }
    }

    func readShared(_ locator: String, _ name: String, sseKey: [UInt8] = []) async throws -> [UInt8] {
        var out: [UInt8] = []
        _ = try await readSharedFileStream(SharedFileRequest(locator: locator, name: name, sseKey: sseKey)) { out.append(contentsOf: $0) }
        return out
    }
}

/// Where a StoreTestCase's store lives.
enum TestBackend {
    case local
    /// SeaweedFS from tools/dev-s3, with 5 MiB parts so that a few MiB make a multipart object.
    case seaweedFS
}

/// A test case with its own daemon, a connected client and an initialized store: local by
/// default; the `...OnS3` subclasses run the same tests on an aws: store on SeaweedFS.
class StoreTestCase: XCTestCase {
    var daemon: DaemonProcess!
    var client: JobStoreClient!
    var locator: String!
    class var backend: TestBackend { .local }
    var isLocal: Bool { Self.backend == .local }
    private var s3: S3ObjectStore?
    private var bucket = ""

    override func setUp() async throws {
        switch Self.backend {
        case .local:
            daemon = try DaemonProcess()
            locator = daemon.locator()
        case .seaweedFS:
            daemon = try DaemonProcess.withS3(extraArguments: ["--part-size", "5MiB"])
            let name = "jobstore-suite-\(UUID().uuidString.prefix(8).lowercased())"
            locator = "aws:us-east-1:\(name)"
            bucket = name + "--toil"
            s3 = DaemonProcess.testS3Store()
        }
        client = try daemon.connect()
        _ = try await client.initialize(StoreRequest(locator: locator))
    }

    override func tearDown() async throws {
        if !isLocal, let client, let locator {
            _ = try? await client.destroy(StoreRequest(locator: locator))
        }
        client?.connection.close()
        daemon?.stop()
    }

    /// The local store's directory.
    var storeDirectory: String { String(locator.dropFirst("local:".count)) }

    /// Every key in the store's bucket (local: its published objects), plus unfinished uploads.
    func storedKeys() throws -> [String] {
        if let s3 {
            var keys: [String] = []
            var after = ""
            while true {
                let page = try s3.list(bucket, prefix: "", startAfter: after, maxKeys: 1000)
                keys += page.objects.map(\.key)
                guard page.truncated, let last = page.objects.last else { break }
                after = last.key
            }
            return keys + (try s3.listMultipartUploads(bucket).map { "upload:" + $0.key })
        }
        let objects = try FileManager.default.subpathsOfDirectory(atPath: storeDirectory + "/objects")
            .filter { $0.hasSuffix(".obj") }
            .map { $0.replacingOccurrences(of: ".d/", with: "/").replacingOccurrences(of: ".obj", with: "") }
        let versions = try FileManager.default.contentsOfDirectory(atPath: storeDirectory + "/versions")
        return objects + versions.map { "version:" + $0 }
    }

    func objectExists(_ key: String) throws -> Bool {
        if let s3 { return try s3.head(bucket, key: key, options: GetOptions()) != nil }
        let path = key.split(separator: "/").dropLast().map { $0 + ".d/" }.joined() + (key.split(separator: "/").last.map(String.init) ?? "")
        return FileManager.default.fileExists(atPath: storeDirectory + "/objects/" + path + ".obj")
    }

    /// Replaces an object's bytes but not its metadata, as a faulty disk
    /// or a careless tool would: the stored checksum no longer matches.
    func overwriteBehindTheDaemon(_ key: String, _ bytes: [UInt8]) throws {
        if let s3 {
            // The metadata as the daemon reads it, checksum included (for a multipart object it
            // came from the tags; here it becomes plain metadata).
            let head = try XCTUnwrap(s3.head(bucket, key: key, options: GetOptions()))
            try s3.client.send("PUT", bucket: bucket, key: key, headers: head.metadata.map { ("x-amz-meta-\($0.key)", $0.value) }, body: bytes)
            return
        }
        let path = storeDirectory + "/objects/" + key.split(separator: "/").dropLast().map { $0 + ".d/" }.joined()
            + (key.split(separator: "/").last.map(String.init) ?? "") + ".obj"
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: path)
        let data = (path as NSString).deletingLastPathComponent + "/" + target + "/data"
        chmod(data, 0o600)
        try Data(bytes).write(to: URL(fileURLWithPath: data))
    }

    /// The bytes behind a URL from GetPublicUrl: file:// (local) or a presigned http:// one.
    func fetch(_ url: String) throws -> [UInt8] {
        if url.hasPrefix("file://") { return [UInt8](try Data(contentsOf: URL(string: url)!)) }
        let response = try CurlSession().perform(CurlSession.Request(method: "GET", url: url))
        XCTAssertEqual(response.status, 200, url)
        return response.body
    }
}
