import Foundation
import JobStoreTestSupport
import JobStoreWire

// jobstore-fuzz: hostile frames against a live jobstored, for a bounded time.
//
// usage: jobstore-fuzz JOBSTORED_BINARY [--seconds N] [--seed N]
// Starts a daemon on a scratch directory and sends it sequences of frames made from valid
// requests of every method, mutated (flipped bits, cut or stretched payloads, wrong lengths,
// types, flags, codes, call ids, stray DATA/END/CANCEL frames) and filled with hostile strings
// (.., /, NUL, control characters, very long values, bad locators). After every batch the
// daemon must still answer a Ping on a fresh connection; at the end nothing named by the
// hostile strings may exist outside the scratch store. Prints one summary line; exits 1 on a
// crash, a hang or an escape.

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: jobstore-fuzz JOBSTORED_BINARY [--seconds N] [--seed N]\n".utf8))
    exit(2)
}
func option(_ name: String) -> Int? { arguments.firstIndex(of: name).flatMap { Int(arguments[$0 + 1]) } }
let seconds = Double(option("--seconds") ?? 30)
var rng = Mutator(seed: UInt64(option("--seed") ?? Int(Date().timeIntervalSince1970)))
signal(SIGPIPE, SIG_IGN)

let scratch = NSTemporaryDirectory() + "jobstore-fuzz-\(UUID().uuidString.prefix(8))"
try FileManager.default.createDirectory(atPath: scratch + "/work", withIntermediateDirectories: true)
let socketPath = scratch + "/d.sock"
let store = "local:\(scratch)/work/store"
let daemon = Process()
daemon.executableURL = URL(fileURLWithPath: arguments[1])
// Mutated locators name paths anywhere (a flipped bit in "/tmp" makes "/tep"): the daemon
// serves local: stores under the scratch directory only, so no mutation creates one elsewhere.
daemon.arguments = ["--socket", socketPath, "--no-fsync", "--log-level", "critical", "--cache-dir", scratch + "/cache",
                    "--local-root", scratch + "/work"]
try daemon.run()
/// Stops the daemon and removes the scratch directory (`exit` skips top-level defers).
func cleanUp() {
    if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() }
    try? FileManager.default.removeItem(atPath: scratch)
}
while (try? UnixSocket.connect(path: socketPath)).map({ close($0) }) == nil { usleep(10_000) }

let hostile: [String] = [
    store, store, "local:relative", "aws:", "aws:us-east-1:", "aws:us-east-1:A_B", "local:", "", "..", "../..",
    "../../fuzz-escape", "/fuzz-escape", "a/../../../fuzz-escape", "a\u{0}b", "\u{1}\u{7f}\n\r\t", "files/../jobs",
    String(repeating: "x", count: 5000), String(repeating: "../", count: 200) + "fuzz-escape", "é☃\u{202e}",
    "job-1", "config.pickle", "deleted", "files", "a/b/files/c",
]
/// Initialize the store so that later requests reach deep into the handlers.
do {
    let fd = try UnixSocket.connect(path: socketPath)
    _ = sendFrame(fd, callID: 1, code: 3, type: 1, payload: Protobuf.message([(1, .string(store))]))
    usleep(200_000)
    close(fd)
}

let started = Date()
var batches = 0
var frames = 0
var failures: [String] = []
let methodCount = UInt16(JobStoreMethod.allCases.count)
while Date().timeIntervalSince(started) < seconds, failures.isEmpty {
    batches += 1
    guard let fd = try? UnixSocket.connect(path: socketPath) else {
        failures.append("cannot connect after \(batches) batches")
        break
    }
    let count = 1 + Int(rng.next() % 6)
    for _ in 0..<count {
        var payload = Protobuf.random(&rng, strings: hostile)
        var type = UInt8(1)
        var code = UInt16(rng.next() % UInt64(methodCount + 2))
        var callID = UInt32(1 + rng.next() % 4)
        var declared: UInt32? = nil
        switch rng.next() % 10 {
        case 0: payload = rng.flipBits(payload)
        case 1: payload = Array(payload.prefix(Int(rng.next() % UInt64(payload.count + 1))))
        case 2: type = UInt8(rng.next() % 8)
        case 3: code = UInt16(truncatingIfNeeded: rng.next())
        case 4: declared = UInt32(truncatingIfNeeded: rng.next())  // a length that lies
        case 5: type = [3, 4, 5][Int(rng.next() % 3)]; callID = UInt32(truncatingIfNeeded: rng.next())
        case 6: payload = rng.bytes(Int(rng.next() % 300))
        default: break
        }
        frames += 1
        if !sendFrame(fd, callID: callID, code: code, type: type, payload: payload, declaredLength: declared,
                      flags: rng.next() % 20 == 0 ? 1 : 0) { break }
    }
    drain(fd)
    close(fd)
    if batches % 50 == 0 && !pingOK() {
        failures.append(daemon.isRunning ? "no answer to Ping after \(batches) batches (\(pingFailure))" : "the daemon died (status \(daemon.terminationStatus))")
    }
}
if failures.isEmpty && !pingOK() { failures.append(daemon.isRunning ? "no answer to Ping at the end (\(pingFailure))" : "the daemon died") }
// Nothing the hostile names point at may exist outside the store.
for path in [scratch + "/fuzz-escape", scratch + "/work/fuzz-escape", "/fuzz-escape", NSTemporaryDirectory() + "fuzz-escape"]
    where FileManager.default.fileExists(atPath: path) {
    failures.append("a hostile name escaped the store: \(path) exists")
}
print("fuzz: \(batches) connections, \(frames) frames in \(Int(Date().timeIntervalSince(started))) s, " +
      "crashes \(daemon.isRunning ? 0 : 1), failures \(failures.isEmpty ? "none" : failures.joined(separator: "; "))")
cleanUp()
exit(failures.isEmpty ? 0 : 1)

// MARK: -

/// Sends one frame (header + payload); false when the daemon closed the connection.
@discardableResult
func sendFrame(_ fd: Int32, callID: UInt32, code: UInt16, type: UInt8, payload: [UInt8], declaredLength: UInt32? = nil,
               flags: UInt8 = 0) -> Bool {
    var bytes = [UInt8]()
    func u32(_ v: UInt32) { bytes += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
    u32(declaredLength ?? UInt32(payload.count))
    u32(callID)
    bytes += [UInt8(code >> 8), UInt8(truncatingIfNeeded: code), type, flags]
    bytes += payload
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return false }
        done += n
    }
    return true
}

/// Reads whatever the daemon answers until it has been quiet for 3 ms.
func drain(_ fd: Int32) {
    var buffer = [UInt8](repeating: 0, count: 65536)
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while poll(&p, 1, 3) > 0 {
        if recv(fd, &buffer, buffer.count, 0) <= 0 { return }
    }
}

/// A Ping on a fresh connection answers OK within 5 s.
/// Why the last Ping failed, for the summary line.
nonisolated(unsafe) var pingFailure = ""

func pingOK() -> Bool {
    let fd: Int32
    do {
        fd = try UnixSocket.connect(path: socketPath)
    } catch {
        pingFailure = "connect: \(error)"
        return false
    }
    defer { close(fd) }
    guard sendFrame(fd, callID: 7, code: 1, type: 1, payload: []) else { pingFailure = "send failed"; return false }
    var header = [UInt8](repeating: 0, count: 12)
    var got = 0
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while got < 12 {
        guard poll(&p, 1, 5000) > 0 else { pingFailure = "no answer within 5 s"; return false }
        let n = header.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 12 - got, 0) }
        if n <= 0 { pingFailure = "connection closed"; return false }
        got += n
    }
    guard header[4..<8] == [0, 0, 0, 7] && header[8] == 0 && header[9] == 0 && header[10] == 2 else {
        pingFailure = "unexpected answer \(header)"
        return false
    }
    return true
}

/// Protobuf payloads built from fields of the shapes the service's messages use.
enum Protobuf {
    enum Value { case string(String), varint(UInt64), bytes([UInt8]) }

    static func message(_ fields: [(Int, Value)]) -> [UInt8] {
        var out: [UInt8] = []
        for (number, value) in fields {
            switch value {
            case .varint(let v):
                out += varint(UInt64(number << 3))
                out += varint(v)
            case .string(let s):
                out += varint(UInt64(number << 3 | 2))
                out += varint(UInt64(s.utf8.count))
                out += Array(s.utf8)
            case .bytes(let b):
                out += varint(UInt64(number << 3 | 2))
                out += varint(UInt64(b.count))
                out += b
            }
        }
        return out
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(v & 0x7F)
            v >>= 7
            if v != 0 { byte |= 0x80 }
            out.append(byte)
        } while v != 0
        return out
    }

    static func random(_ rng: inout Mutator, strings: [String]) -> [UInt8] {
        var fields: [(Int, Value)] = [(1, .string(strings[Int(rng.next() % UInt64(strings.count))]))]
        for _ in 0..<Int(rng.next() % 6) {
            let number = 2 + Int(rng.next() % 8)
            switch rng.next() % 4 {
            case 0: fields.append((number, .varint(rng.next() % 3 == 0 ? rng.next() : rng.next() % 4)))
            case 1: fields.append((number, .bytes(rng.bytes(Int(rng.next() % 64)))))
            default: fields.append((number, .string(strings[Int(rng.next() % UInt64(strings.count))])))
            }
        }
        return message(fields)
    }
}

/// The mutations, drawn from a seeded SplitMix64 (JobStoreTestSupport) so a run replays from its seed.
struct Mutator {
    var random: SplitMix64
    init(seed: UInt64) { random = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { random.next() }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func flipBits(_ input: [UInt8]) -> [UInt8] {
        guard !input.isEmpty else { return input }
        var out = input
        for _ in 0..<(1 + Int(next() % 4)) {
            let i = Int(next() % UInt64(out.count))
            out[i] ^= UInt8(1 << (next() % 8))
        }
        return out
    }
}
