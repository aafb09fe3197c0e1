import Foundation
import XCTest

/// Runs the `jobstore` command beside the daemon under test, with stdin, stdout and stderr of
/// its own (pipes: never a terminal, so progress comes as plain lines).
struct CommandRunner {
    struct Result {
        var status: Int32
        var output: Data
        var errors: String
        var text: String { String(decoding: output, as: UTF8.self) }
        var lines: [String] { text.split(separator: "\n").map(String.init) }
    }

    static var binary: String {
        URL(fileURLWithPath: DaemonProcess.binary).deletingLastPathComponent().appendingPathComponent("jobstore").path
    }

    let socket: String

    /// `jobstore ARGUMENTS --socket SOCKET`, waiting for it to end.
    func run(_ arguments: [String], input: Data? = nil, socketOption: Bool = true,
             environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments + (socketOption ? ["--socket", socket] : [])
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBSTORED_") }.merging(environment) { $1 }
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        try p.run()
        // Feed stdin and drain both outputs at once: a large transfer fills any one pipe.
        let writer = Thread {
            if let input { stdin.fileHandleForWriting.write(input) }
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let errorBox = DataBox()
        let errorReader = Thread { errorBox.data = stderr.fileHandleForReading.readDataToEndOfFile() }
        errorReader.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errorBox.done { usleep(1000) }
        return Result(status: p.terminationStatus, output: output, errors: String(decoding: errorBox.data, as: UTF8.self))
    }

    /// Starts `jobstore ARGUMENTS` without waiting (for --follow); stdout goes to `outputPath`.
    func start(_ arguments: [String], outputPath: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments + ["--socket", socket]
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: outputPath)
        p.standardError = FileHandle.standardError
        try p.run()
        return p
    }
}

/// Bytes one thread reads while another waits for them.
final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _data = Data()
    private var _done = false
    var data: Data {
        get { lock.lock(); defer { lock.unlock() }; return _data }
        set { lock.lock(); _data = newValue; _done = true; lock.unlock() }
    }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return _done }
}

/// Parses a `--json` answer.
func jsonValue(_ result: CommandRunner.Result, file: StaticString = #filePath, line: UInt = #line) throws -> Any {
    XCTAssertEqual(result.status, 0, result.errors, file: file, line: line)
    return try JSONSerialization.jsonObject(with: result.output, options: [.fragmentsAllowed])
}
