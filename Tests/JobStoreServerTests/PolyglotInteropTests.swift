import Foundation
import JobStoreClient
import JobStoreWire
import S3
import XCTest

/// One daemon, three clients (Swift, C via Clients/c's jobstore-c, Python via Clients/python),
/// each reading what the others wrote, byte for byte, with streams from all three interleaved.
final class PolyglotInteropTests: StoreTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var cTool: String { root.appendingPathComponent("Clients/c/build/jobstore-c").path }

    /// Runs a program with `input` on stdin; returns stdout, failing the test on a nonzero exit.
    func run(_ arguments: [String], input: [UInt8] = [], file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["PYTHONPATH"] = Self.root.appendingPathComponent("Clients/python").path
        env["JOBSTORED_SOCKET"] = daemon.socket
        process.environment = env
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(arguments.prefix(3)): \(String(decoding: err, as: UTF8.self))", file: file, line: line)
        return [UInt8](out)
    }

    func python(_ code: String, input: [UInt8] = []) throws -> [UInt8] {
        try run(["python3", "-c", "import sys, jobstore\nfrom jobstore import pb\nc = jobstore.Client()\nL = \(pythonString(locator))\n" + code],
                input: input)
    }

    func pythonString(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "\\'") + "'" }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }

    func testEveryLanguageReadsWhatTheOthersWrote() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.cTool) else {
            return XCTFail("build the C client first: make -C Clients/c (tools/test does)")
        }
        // Swift writes; C and Python read.
        let fromSwift = pattern(3 << 20 + 11, seed: 21)
        let swiftFile = try await client.upload(WriteFileRequest(locator: locator, basename: "swift.bin"), fromSwift)
        XCTAssertTrue(try run([Self.cTool, "get", locator, swiftFile.fileId]) == fromSwift, "C reads Swift's file")
        let pyRead = try python("d = c.read_file_stream(pb.FileRequest(locator=L, file_id=\(pythonString(swiftFile.fileId))))\nsys.stdout.buffer.write(d.read())")
        XCTAssertTrue(pyRead == fromSwift, "Python reads Swift's file")

        // C writes (a stream from stdin, and a passed descriptor); Swift and Python read.
        let fromC = pattern(2 << 20 + 3, seed: 22)
        let cFile = text(try run([Self.cTool, "put", locator, "c.bin"], input: fromC))
        let swiftRead = try await client.download(locator, cFile)
        XCTAssertTrue(swiftRead == fromC, "Swift reads C's file")
        let pyReadC = try python("sys.stdout.buffer.write(c.read_file_stream(pb.FileRequest(locator=L, file_id=\(pythonString(cFile)))).read())")
        XCTAssertTrue(pyReadC == fromC, "Python reads C's file")
        let path = daemon.directory + "/c-source.bin"
        FileManager.default.createFile(atPath: path, contents: Data(fromC))
        let cFdFile = text(try run([Self.cTool, "put-fd", locator, path]))
        let swiftReadFd = try await client.download(locator, cFdFile)
        XCTAssertTrue(swiftReadFd == fromC)

        // Python creates a job (binary, like a pickle); C and Swift load it.
        let body: [UInt8] = [0x80, 0x05, 0x00, 0xff] + Array("JobDescription".utf8) + [0, 0, 1]
        _ = try python("c.create_job(pb.JobBody(locator=L, job_id='py-job', body=sys.stdin.buffer.read()))", input: body)
        XCTAssertEqual(try run([Self.cTool, "load-job", locator, "py-job"]), body, "C loads Python's job")
        let loaded = try await client.loadJob(JobRequest(locator: locator, jobId: "py-job"))
        XCTAssertEqual(loaded.body, body, "Swift loads Python's job")
        // C creates a job; Python loads it.
        _ = try run([Self.cTool, "create-job", locator, "c-job"], input: body.reversed())
        XCTAssertEqual(try python("sys.stdout.buffer.write(c.load_job(pb.JobRequest(locator=L, job_id='c-job')).body)"), body.reversed())
    }

    /// A Swift upload stays open while C and Python each write and read files; all land whole.
    func testStreamsFromThreeLanguagesInterleave() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.cTool) else {
            return XCTFail("build the C client first: make -C Clients/c (tools/test does)")
        }
        let swiftBytes = pattern(4 << 20, seed: 31)
        let cBytes = pattern(3 << 20, seed: 32)
        let pyBytes = pattern(1 << 20 + 77, seed: 33)
        let (swiftInfo, cID, pyID) = try await { () async throws -> (FileInfo, String, String) in
            var cID = "", pyID = ""
            let info = try await client.writeFileStream(WriteFileRequest(locator: locator, basename: "interleaved")) { upload in
                try await upload.write(Array(swiftBytes[..<(2 << 20)]))
                // Mid-stream: the other languages work on the same daemon.
                cID = self.text(try self.run([Self.cTool, "put", self.locator], input: cBytes))
                pyID = self.text(try self.python("print(c.write_file_stream(pb.WriteFileRequest(locator=L), sys.stdin.buffer.read()).file_id)",
                                                 input: pyBytes))
                try await upload.write(Array(swiftBytes[(2 << 20)...]))
            }
            return (info, cID, pyID)
        }()
        let swiftBack = try await client.download(locator, swiftInfo.fileId)
        XCTAssertTrue(swiftBack == swiftBytes)
        XCTAssertTrue(try run([Self.cTool, "get", locator, pyID]) == pyBytes, "C reads Python's file")
        XCTAssertTrue(try python("sys.stdout.buffer.write(c.read_file_stream(pb.FileRequest(locator=L, file_id=\(pythonString(cID)))).read())") == cBytes,
                      "Python reads C's file")
    }
}
