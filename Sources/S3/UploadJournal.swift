import Foundation

/// The multipart uploads this daemon has open, in a file, so that after a crash the next start
/// aborts exactly them: an unfinished upload is invisible but is stored (and billed) until
/// someone aborts it, and only this node knows which ones are its own and dead.
///
/// Lines are appended (O_APPEND, one write each, so two daemons taking over from one another
/// never interleave within a line): `begin\tREGION\tBUCKET\tUPLOAD-ID\tKEY` and `end\tUPLOAD-ID`.
public final class UploadJournal: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var fd: Int32 = -1

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

    func begin(region: String, bucket: String, key: String, uploadID: String) {
        append("begin\t\(region)\t\(bucket)\t\(uploadID)\t\(key)\n")
    }

    func end(uploadID: String) {
        append("end\t\(uploadID)\n")
    }

    private func append(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        if fd < 0 { fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { return }
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Uploads begun and never ended (keys may hold tabs: the key is the line's last field).
    public func openUploads() -> [OpenUpload] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var open: [String: OpenUpload] = [:]
        var order: [String] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            if fields.count == 5, fields[0] == "begin" {
                open[fields[3]] = OpenUpload(region: fields[1], bucket: fields[2], key: fields[4], uploadID: fields[3])
                order.append(fields[3])
            } else if fields.count == 2, fields[0] == "end" {
                open[fields[1]] = nil
            }
        }
        return order.compactMap { open[$0] }
    }

    /// Starts the journal afresh (after the open uploads were dealt with).
    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { close(fd); fd = -1 }
        let temporary = path + ".tmp"
        let created = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if created >= 0 { close(created) }
        rename(temporary, path)
    }
}
