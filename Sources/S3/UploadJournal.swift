import Foundation
import Synchronization
import SystemCall

/// The multipart uploads this daemon has open, in a file, so that after a crash the next start
/// aborts exactly them: an unfinished upload is invisible but is stored (and billed) until
/// someone aborts it, and only this node knows which ones are its own and dead.
///
/// Lines are appended (O_APPEND, one write each, so two daemons taking over from one another
/// never interleave within a line): `begin\tREGION\tBUCKET\tUPLOAD-ID\tKEY` and `end\tUPLOAD-ID`.
///
/// An upload's id is known only once CreateMultipartUpload answers, and a daemon killed between
/// that answer and its `begin` line would leave an upload no line names. So an `intent` is
/// written before the request, `intent\tREGION\tBUCKET\tTOKEN\tSECONDS\tKEY`, and `settled\tTOKEN`
/// once the `begin` is written (or the request failed); an intent never settled means "an
/// upload of KEY begun at about SECONDS may be open", and the next start looks for it.
public final class UploadJournal: Sendable {
    public let path: String
    /// The journal file, open for appending (-1: not yet, or reset since); its lock is held
    /// across each append and reset, so lines and resets never interleave.
    private let fd = Mutex<Int32>(-1)

    public init(path: String) {
        self.path = path
    }

    /// An upload this daemon left open, as recorded.
    public struct OpenUpload: Equatable, Sendable {
        public var region: String
        public var bucket: String
        public var key: String
        public var uploadID: String
    }

    /// A CreateMultipartUpload about to be sent, whose upload a crash may leave unnamed.
    public struct Intent: Equatable, Sendable {
        public var region: String
        public var bucket: String
        public var key: String
        /// Seconds since 1970, when the request was about to be sent.
        public var since: Double
    }

    /// Records a CreateMultipartUpload about to be sent; returns the token to settle it with.
    func intend(region: String, bucket: String, key: String) -> String {
        let token = UUID().uuidString.lowercased()
        append("intent\t\(region)\t\(bucket)\t\(token)\t\(Int(Date().timeIntervalSince1970))\t\(key)\n")
        return token
    }

    /// The intent's upload is journaled by its id (`begin`), or was never made.
    func settle(_ token: String) {
        append("settled\t\(token)\n")
    }

    func begin(region: String, bucket: String, key: String, uploadID: String) {
        append("begin\t\(region)\t\(bucket)\t\(uploadID)\t\(key)\n")
    }

    func end(uploadID: String) {
        append("end\t\(uploadID)\n")
    }

    private func append(_ line: String) {
        fd.withLock { fd in
            if fd < 0 { fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) }
            guard fd >= 0 else { return }
            let descriptor = fd
            let bytes = Array(line.utf8)
            _ = bytes.withUnsafeBytes { raw in SystemCall.retryingInterrupts { write(descriptor, raw.baseAddress, raw.count) } }
        }
    }

    /// Uploads begun and never ended, and intents never settled, from one reading of the file
    /// (keys may hold tabs: the key is a line's last field).
    public func unfinished() -> (uploads: [OpenUpload], intents: [Intent]) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], []) }
        var uploads: [String: OpenUpload] = [:], intents: [String: Intent] = [:]
        var uploadOrder: [String] = [], intentOrder: [String] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let kind = line.prefix { $0 != "\t" }
            let fields = line.split(separator: "\t", maxSplits: kind == "intent" ? 5 : 4, omittingEmptySubsequences: false).map(String.init)
            switch (kind, fields.count) {
            case ("begin", 5):
                uploads[fields[3]] = OpenUpload(region: fields[1], bucket: fields[2], key: fields[4], uploadID: fields[3])
                uploadOrder.append(fields[3])
            case ("end", 2):
                uploads[fields[1]] = nil
            case ("intent", 6):
                guard let since = Double(fields[4]) else { continue }
                intents[fields[3]] = Intent(region: fields[1], bucket: fields[2], key: fields[5], since: since)
                intentOrder.append(fields[3])
            case ("settled", 2):
                intents[fields[1]] = nil
            default:
                continue
            }
        }
        return (uploadOrder.compactMap { uploads[$0] }, intentOrder.compactMap { intents[$0] })
    }

    /// Uploads begun and never ended.
    public func openUploads() -> [OpenUpload] { unfinished().uploads }

    /// Intents never settled: a CreateMultipartUpload whose answer a crash may have lost.
    public func unsettledIntents() -> [Intent] { unfinished().intents }

    /// Starts the journal afresh (after the open uploads were dealt with).
    public func reset() {
        fd.withLock { fd in
            if fd >= 0 { close(fd); fd = -1 }
            let temporary = path + ".tmp"
            let created = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if created >= 0 { close(created) }
            rename(temporary, path)
        }
    }
}
