import Foundation
import ObjectStore

/// Logs, in Toil's layout: `logs/<local time>_<uuid>` objects and a root marker object whose
/// body is the last log key read.
///
/// Toil reads only keys after its marker, so a log written by a node whose clock is behind
/// the reader's is never read. The daemon keeps Toil's marker (Toil can still read the store)
/// and, with it, the keys it read within `logClockSkewTolerance` of the marker: a log that
/// arrives late with an older timestamp is still delivered, exactly once.
///
/// A poll of the logs costs a listing, and one GET of the marker only when the listing shows a
/// log unread against the marker and window this daemon last saw (Toil's costs both at every
/// poll, and its leader polls about twice a second: a fifth of a cluster fan-out's requests).
/// That is safe across nodes: another reader's marker only moves forward, over logs it read,
/// and those are unread against ours, so their listing sends this poll for the marker.
/// (Reading the window too was ~20 % of a sort workflow's log requests at 20 ms a request.)
/// The window travels in the marker's own metadata when it fits in S3's 2 KB of metadata, else in a `.jobstored` object beside the marker, named in the
/// metadata by a token of that write; the daemon that wrote it remembers the window, so while
/// the marker names its token nothing more is read.
extension JobStore {
    struct LogState: Codable {
        var marker: String
        var recent: [String]
    }

    public func writeLog(_ message: [UInt8], sseKey: EncryptionKey? = nil) throws {
        try putChecked(Keys.logs + Self.logName(Date()), MemorySource(message), sseKey: sseKey)
    }

    /// One page of worker logs (ReadLogs), with where the next page or poll continues.
    public struct LogPage: Sendable {
        public var messages: [[UInt8]]
        public var nextPageToken: String
        /// With `readAll`: where to continue after this page's last message, even at the end.
        public var resumeToken: String = ""
        /// With `readAll`: each message's key.
        public var keys: [String] = []
    }

    /// Logs not read before (which become read), or every log when `readAll`, in key order.
    /// A page holds at most `maxMessages` messages and about 8 MiB; a non-empty
    /// `nextPageToken` means more remain.
    /// With `readAll`, `overlapSeconds` starts the listing that long before `pageToken`'s time.
    public func readLogs(readAll: Bool, pageToken: String, maxMessages: Int, overlapSeconds: Int = 0,
                         sseKey: EncryptionKey? = nil) throws -> LogPage {
        let limit = maxMessages <= 0 ? 1000 : min(maxMessages, 10_000)
        let byteBudget = 8 << 20
        if readAll {
            if !pageToken.isEmpty && !pageToken.hasPrefix(Keys.logs) {
                throw JobStoreError(.invalidArgument, "Invalid page token \(pageToken.debugDescription).")
            }
            let overlap = Double(min(overlapSeconds, 86_400))
            let startAfter = overlap > 0 && !pageToken.isEmpty ? Self.shiftedLogKey(pageToken, by: -overlap) ?? pageToken : pageToken
            let page = try mapped { try store.list(bucket, prefix: Keys.logs, startAfter: startAfter, maxKeys: limit) }
            var messages: [[UInt8]] = []
            var keys: [String] = []
            var bytes = 0
            var last = ""
            for object in page.objects {
                if !messages.isEmpty && bytes + Int(object.size) > byteBudget { break }
                guard let body = try readLog(object.key, sseKey: sseKey) else { continue }
                messages.append(body)
                keys.append(object.key)
                bytes += body.count
                last = object.key
            }
            let more = page.truncated || last != page.objects.last?.key
            return LogPage(messages: messages, nextPageToken: more && !last.isEmpty ? last : "",
                           resumeToken: max(last, pageToken), keys: keys)
        }

        return try logMemory.withLock { memory in
            try pollUnreadLogs(&memory, limit: limit, byteBudget: byteBudget, sseKey: sseKey)
        }
    }

    /// A poll of the logs not read before, under `logMemory`'s lock (held across its requests).
    private func pollUnreadLogs(_ memory: inout LogMemory, limit: Int, byteBudget: Int,
                                sseKey: EncryptionKey?) throws -> LogPage {
        var listed: [String: ListPage] = [:]  // pages this poll has listed, by where they start
        func page(after startAfter: String) throws -> ListPage {
            if let known = listed[startAfter] { return known }
            let page = try mapped { try store.list(bucket, prefix: Keys.logs, startAfter: startAfter, maxKeys: 1000) }
            listed[startAfter] = page
            return page
        }
        if let seen = memory.lastLogSeen {
            let recent = Set(seen.recent)
            var startAfter = logLowerBound(marker: seen.marker, recent: recent)
            var unread = false
            while !unread {
                let page = try page(after: startAfter)
                unread = page.objects.contains { !Self.isRead($0.key, marker: seen.marker, recent: recent) }
                guard page.truncated, let last = page.objects.last else { break }
                startAfter = last.key
            }
            if !unread { return LogPage(messages: [], nextPageToken: "") }
        }
        memory.lastLogSeen = nil  // until this poll has seen what the marker says
        let markerSink = MemorySink(limit: 4096)
        var marker = ""
        var markerInfo: ObjectInfo?
        do {
            markerInfo = try getVerified(Keys.shared + Keys.logMarker, into: markerSink, notFound: .noSuchFile(Keys.logMarker),
                                         sseKey: sseKey)
            marker = String(decoding: markerSink.bytes, as: UTF8.self)
        } catch let f as JobStoreError where f.kind == .noSuchFile {}
        if marker == "0" { marker = "" }
        // Our window state counts only while it belongs to the current marker; a marker Toil
        // advanced means Toil's own rule (everything up to the marker was read). A marker
        // without our metadata was written by Toil, or by a daemon that kept the window in the
        // `.jobstored` object only, so that object is the one to ask.
        var recent = Set<String>()
        if !marker.isEmpty, let markerInfo {
            let named = markerInfo.metadata[Keys.Meta.logRecent]
            if let last = memory.lastLogWindow, named == Self.logStateInObject + last.token, last.state.marker == marker {
                recent = Set(last.state.recent)
            } else if let inline = named, !inline.hasPrefix(Self.logStateInObject) {
                recent = Self.decodeLogWindow(inline)
            } else if let state = try loadLogState(sseKey: sseKey), state.marker == marker {
                recent = Set(state.recent)
            }
        }
        let lowerBound = logLowerBound(marker: marker, recent: recent)

        var messages: [[UInt8]] = []
        var readKeys: [String] = []
        var bytes = 0
        var more = false
        var startAfter = lowerBound
        scan: while true {
            let page = try page(after: startAfter)
            for object in page.objects {
                if Self.isRead(object.key, marker: marker, recent: recent) { continue }
                if messages.count >= limit || (!messages.isEmpty && bytes + Int(object.size) > byteBudget) {
                    more = true
                    break scan
                }
                guard let body = try readLog(object.key, sseKey: sseKey) else { continue }
                messages.append(body)
                readKeys.append(object.key)
                bytes += body.count
            }
            guard page.truncated, let last = page.objects.last else { break }
            startAfter = last.key
        }
        if !readKeys.isEmpty {
            let newMarker = max(marker, readKeys.max()!)
            let floor = Self.shiftedLogKey(newMarker, by: -logClockSkewTolerance) ?? newMarker
            var window = recent.union(readKeys).filter { $0 > floor }
            window.insert(newMarker)
            let state = LogState(marker: newMarker, recent: window.sorted())
            memory.lastLogWindow = nil  // whatever happens to these writes, the remembered window is no longer current
            let inline = Self.encodeLogWindow(window)
            let token = UUID().uuidString.lowercased()
            if inline == nil {
                try putChecked(Keys.shared + Keys.logState, MemorySource([UInt8](try JSONEncoder().encode(state))), sseKey: sseKey)
            }
            try putChecked(Keys.shared + Keys.logMarker, MemorySource(Array(newMarker.utf8)),
                           metadata: [Keys.Meta.logRecent: inline ?? Self.logStateInObject + token], sseKey: sseKey)
            if inline == nil { memory.lastLogWindow = (token, state) }
            memory.lastLogSeen = state
        } else {
            memory.lastLogSeen = LogState(marker: marker, recent: recent.sorted())
        }
        return LogPage(messages: messages, nextPageToken: more ? "more" : "")
    }

    /// Where a poll's listing starts: after the marker, or, with a window, that far before it.
    func logLowerBound(marker: String, recent: Set<String>) -> String {
        if marker.isEmpty { return "" }
        if recent.isEmpty { return marker }
        return Self.shiftedLogKey(marker, by: -logClockSkewTolerance) ?? marker
    }

    /// Whether a log was read, as the marker and its window say (no window: Toil's rule,
    /// everything up to the marker).
    static func isRead(_ key: String, marker: String, recent: Set<String>) -> Bool {
        key <= marker && (recent.isEmpty || recent.contains(key))
    }

    /// The marker's metadata value saying the window is in the `.jobstored` object (then
    /// followed by the token of the write).
    static let logStateInObject = "object:"
    /// Room for the window in the marker's metadata (S3 allows 2 KB of user metadata in all).
    static let inlineLogWindowLimit = 1536

    /// The window as one metadata value, `v1,` and the keys without `logs/` separated by
    /// commas; nil when it does not fit or a key is not plain ASCII without commas.
    static func encodeLogWindow(_ window: Set<String>) -> String? {
        var names: [String] = []
        for key in window.sorted() {
            guard key.hasPrefix(Keys.logs) else { return nil }
            let name = key.dropFirst(Keys.logs.count)
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") }) else { return nil }
            names.append(String(name))
        }
        let value = (["v1"] + names).joined(separator: ",")
        return value.utf8.count <= inlineLogWindowLimit ? value : nil
    }

    static func decodeLogWindow(_ value: String) -> Set<String> {
        let parts = value.split(separator: ",", omittingEmptySubsequences: true)
        guard parts.first == "v1" else { return [] }
        return Set(parts.dropFirst().map { Keys.logs + $0 })
    }

    private func readLog(_ key: String, sseKey: EncryptionKey?) throws -> [UInt8]? {
        let sink = MemorySink()
        do {
            try getVerified(key, into: sink, notFound: .noSuchFile(key), sseKey: sseKey)
            return sink.bytes
        } catch let f as JobStoreError where f.kind == .noSuchFile {
            return nil
        }
    }

    private func loadLogState(sseKey: EncryptionKey?) throws -> LogState? {
        let sink = MemorySink(limit: 16 << 20)
        do {
            try getVerified(Keys.shared + Keys.logState, into: sink, notFound: .noSuchFile(Keys.logState), sseKey: sseKey)
        } catch let f as JobStoreError where f.kind == .noSuchFile {
            return nil
        }
        return try? JSONDecoder().decode(LogState.self, from: Data(sink.bytes))
    }

    /// Toil's log name: `str(datetime.now()) + str(uuid4())` with spaces as underscores.
    static func logName(_ date: Date) -> String {
        "\(logTimestamp(date))\(UUID().uuidString.lowercased())"
    }

    static func logTimestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        let micros = Int((date.timeIntervalSince1970 - Double(seconds)) * 1_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let base = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))_"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
        // Python's str(datetime) omits the fraction when it is zero.
        return micros == 0 ? base : base + "." + pad(Int32(micros), 6)
    }

    /// The key `seconds` away from a log key's timestamp (nil if the key has none).
    static func shiftedLogKey(_ key: String, by seconds: Double) -> String? {
        let name = key.hasPrefix(Keys.logs) ? String(key.dropFirst(Keys.logs.count)) : key
        let stamp = Array(name.utf8.prefix(19))
        guard stamp.count == 19, let text = String(bytes: stamp, encoding: .utf8) else { return nil }
        var parts = tm()
        let fields = text.split(whereSeparator: { "-_:".contains($0) }).compactMap { Int32($0) }
        guard fields.count == 6 else { return nil }
        parts.tm_year = fields[0] - 1900
        parts.tm_mon = fields[1] - 1
        parts.tm_mday = fields[2]
        parts.tm_hour = fields[3]
        parts.tm_min = fields[4]
        parts.tm_sec = fields[5]
        parts.tm_isdst = -1
        let epoch = mktime(&parts)
        guard epoch != -1 else { return nil }
        return Keys.logs + logTimestamp(Date(timeIntervalSince1970: Double(epoch) + seconds.rounded(.down)))
    }
}
