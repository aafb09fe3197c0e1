import Foundation
import XCTest

/// `Tests/Support/tls_rig.py`: stunnel4 in front of a plain-http server on 127.0.0.1, with a CA
/// and certificates made for this run (`good`, `wrong_host`, `expired` endpoints). Stopped, and
/// its directory removed, by `stop()`.
final class TLSRig: @unchecked Sendable {
    let directory: String
    let pid: pid_t
    let ports: [String: Int]
    let ca: String

    func endpoint(_ service: String = "good") -> String { "https://127.0.0.1:\(ports[service]!)" }

    init(backendHost host: String, port backendPort: Int) throws {
        directory = NSTemporaryDirectory() + "jobstore-tls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/tls_rig.py").path
        let rig = Process()
        rig.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        rig.arguments = ["python3", script, "\(host):\(backendPort)", directory]
        rig.standardError = FileHandle.nullDevice  // stunnel reports refused handshakes: the point of some tests
        try rig.run()
        struct Started: Decodable { let pid: Int32; let ports: [String: Int]; let ca: String }
        var found: Started?
        for _ in 0..<1000 where found == nil {
            found = (try? Data(contentsOf: URL(fileURLWithPath: directory + "/rig.json"))).flatMap { try? JSONDecoder().decode(Started.self, from: $0) }
            if found == nil { usleep(10_000) }
        }
        guard let found else {
            try? FileManager.default.removeItem(atPath: directory)
            throw NSError(domain: "TLSRig", code: 1,
                          userInfo: [NSLocalizedDescriptionKey: "the TLS rig did not start (is stunnel4 installed? tools/test installs it)"])
        }
        (pid, ports, ca) = (found.pid, found.ports, found.ca)
        // stunnel listens once it has read its configuration: wait for each port.
        for port in ports.values { try Self.waitForPort(port) }
    }

    /// The rig in front of the test S3 server (`JOBSTORE_TEST_S3_ENDPOINT`), or of `upstream`.
    convenience init(upstream: String? = nil) throws {
        let text = upstream ?? ProcessInfo.processInfo.environment["JOBSTORE_TEST_S3_ENDPOINT"] ?? ""
        guard let url = URL(string: text), let host = url.host, let port = url.port else {
            throw NSError(domain: "TLSRig", code: 2, userInfo: [NSLocalizedDescriptionKey: "no upstream (JOBSTORE_TEST_S3_ENDPOINT not set)"])
        }
        try self.init(backendHost: host, port: port)
    }

    func stop() {
        if pid > 0 {
            kill(pid, SIGTERM)
            for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func waitForPort(_ port: Int) throws {
        for _ in 0..<500 {
            if let fd = PlainHTTP.connectLoopback(port: port) {
                close(fd)
                return
            }
            usleep(10_000)
        }
        throw NSError(domain: "TLSRig", code: 3, userInfo: [NSLocalizedDescriptionKey: "nothing listens on 127.0.0.1:\(port)"])
    }
}
