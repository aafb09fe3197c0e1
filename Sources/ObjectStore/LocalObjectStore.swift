import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// The embedded default backend: a job store in a local directory (locator `local:/path`).
///
/// Why this layout: every object is a directory `versions/<id>/` holding `data` (the bytes,
/// read-only, hard-linkable) and `meta` (JSON), and `objects/<a>.d/<b>.obj` is a symlink naming
/// the current version. Publishing a version is one `rename` of a symlink, so readers see the
/// old object or the whole new one, and a create-only put is one `symlink`, which fails if the
/// key exists. Each object's version id is its ETag. The bucket is the store's directory path.
public final class LocalObjectStore: ObjectStore {
    /// fsync data and metadata before publishing (survives power loss, not only kill -9).
    public let durable: Bool
    /// Striped locks, held across a key's publish or delete (one stripe per hash of the key).
    private let keyLocks: [KeyLock] = (0..<64).map { _ in KeyLock() }

    /// One stripe of `keyLocks`: a class, as an array cannot hold a `Mutex` itself.
    private final class KeyLock: Sendable {
        /// Guards nothing but the critical section: the files of the keys that hash here.
        let mutex = Mutex(())
    }

    public init(durable: Bool = true) {
        self.durable = durable
    }

    // MARK: buckets

    public func createBucket(_ bucket: String) throws {
        let dir = try Self.checkedBucket(bucket)
        if try bucketExists(dir) { throw ObjectStoreError.bucketAlreadyExists(dir) }
        let parent = (dir as NSString).deletingLastPathComponent
        try LocalFiles.makeDirectories(parent, mode: 0o755)
        // Build the skeleton beside the target and rename it into place: the store appears whole.
        let staging = "\(parent)/.\((dir as NSString).lastPathComponent).creating-\(UUID().uuidString)"
        try LocalFiles.makeDirectory(staging, mode: 0o700)
        try LocalFiles.makeDirectory("\(staging)/objects", mode: 0o700)
        try LocalFiles.makeDirectory("\(staging)/versions", mode: 0o700)
        if rename(staging, dir) != 0 {
            let e = errno
            LocalFiles.removeTree(staging)
            if e == EEXIST || e == ENOTEMPTY { throw ObjectStoreError.bucketAlreadyExists(dir) }
            throw LocalFiles.error("create store \(dir)", e)
        }
    }

    public func bucketExists(_ bucket: String) throws -> Bool {
        let dir = try Self.checkedBucket(bucket)
        return LocalFiles.isDirectory("\(dir)/objects") && LocalFiles.isDirectory("\(dir)/versions")
    }

    public func destroyBucket(_ bucket: String) throws {
        let dir = try Self.checkedBucket(bucket)
        // Only ever remove a directory that is a store: never a user's directory by mistake.
        guard try bucketExists(dir) else { return }
        let doomed = "\(dir).destroying-\(UUID().uuidString)"
        if rename(dir, doomed) != 0 {
            if errno == ENOENT { return }
            throw LocalFiles.error("destroy \(dir)", errno)
        }
        LocalFiles.removeTree(doomed)
    }

    // MARK: objects

    public func put(_ bucket: String, key: String, body: any ByteSource, options: PutOptions) throws -> ObjectInfo {
        let dir = try existingBucket(bucket)
        let path = try ObjectPath(key: key)
        let version = UUID().uuidString.lowercased()
        let versionDir = "\(dir)/versions/\(version)"
        try LocalFiles.makeDirectory(versionDir, mode: 0o700)
        var published = false
        defer { if !published { LocalFiles.removeTree(versionDir) } }

        let size = try writeData(body, to: "\(versionDir)/data", executable: options.executable)
        var metadata = options.metadata
        if let trailing = options.trailingMetadata { metadata.merge(trailing()) { $1 } }
        let now = Date().timeIntervalSince1970
        let record = VersionRecord(key: key, size: size, metadata: metadata, lastModified: now)
        try LocalFiles.writeAtomically(record.encoded(), to: "\(versionDir)/meta", durable: durable)

        let link = "\(dir)/objects/\(path.linkPath)"
        try LocalFiles.makeDirectories((link as NSString).deletingLastPathComponent, mode: 0o700)
        let old: String? = try withKeyLock(key) { () throws -> String? in
            let target = path.versionTarget(version)
            if options.createOnly {
                if symlink(target, link) != 0 {
                    if errno == EEXIST { throw ObjectStoreError.preconditionFailed("\(key) exists") }
                    throw LocalFiles.error("publish \(key)", errno)
                }
                return nil
            }
            let previous = LocalFiles.readLink(link)
            let temporary = "\((link as NSString).deletingLastPathComponent)/.\(version).tmp"
            guard symlink(target, temporary) == 0 else { throw LocalFiles.error("publish \(key)", errno) }
            guard rename(temporary, link) == 0 else {
                let e = errno
                unlink(temporary)
                throw LocalFiles.error("publish \(key)", e)
            }
            return previous
        }
        published = true
        if let old, old != version { LocalFiles.removeTree("\(dir)/versions/\(old)") }
        return ObjectInfo(key: key, size: size, etag: version, metadata: metadata, lastModified: now)
    }

    public func get(_ bucket: String, key: String, into sink: any ByteSink, options: GetOptions) throws -> ObjectInfo {
        let dir = try existingBucket(bucket)
        let path = try ObjectPath(key: key)
        let opened = try openVersion(dir: dir, path: path, key: key, wantData: true)
        defer { close(opened.data) }
        if let expected = options.ifMatch, expected != opened.info.etag {
            throw ObjectStoreError.preconditionFailed("\(key) changed")
        }
        if let current = options.ifNoneMatch, current == opened.info.etag {
            throw ObjectStoreError.notModified(current)
        }
        try options.onInfo?(opened.info)
        var offset: UInt64 = 0
        var end = opened.info.size
        if let range = options.range {
            offset = min(range.lowerBound, opened.info.size)
            end = min(range.upperBound, opened.info.size)
        }
        let bufferSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        while offset < end {
            let want = Int(min(UInt64(bufferSize), end - offset))
            let n = SystemCall.retryingInterrupts { pread(opened.data, buffer.baseAddress, want, off_t(offset)) }
            if n < 0 {
                throw LocalFiles.error("read \(key)", errno)
            }
            if n == 0 { throw ObjectStoreError.dataLoss("\(key) is shorter than its recorded size") }
            // A sink's own error (the reader went away) propagates unchanged.
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += UInt64(n)
        }
        return opened.info
    }

    public func head(_ bucket: String, key: String, options: GetOptions) throws -> ObjectInfo? {
        let dir = try existingBucket(bucket)
        let path = try ObjectPath(key: key)
        do {
            let info = try openVersion(dir: dir, path: path, key: key, wantData: false).info
            if let expected = options.ifMatch, expected != info.etag { throw ObjectStoreError.preconditionFailed("\(key) changed") }
            return info
        } catch ObjectStoreError.noSuchKey {
            return nil
        }
    }

    public func list(_ bucket: String, prefix: String, startAfter: String, maxKeys: Int) throws -> ListPage {
        let dir = try existingBucket(bucket)
        var keys: [String] = []
        // Descend straight to the deepest directory the prefix names in full.
        var components = prefix.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        components.removeLast()
        var start = "\(dir)/objects"
        var keyPrefix = ""
        for c in components {
            guard ObjectPath.isValidComponent(c) else { return ListPage(objects: [], truncated: false) }
            start += "/\(c).d"
            keyPrefix += "\(c)/"
        }
        collectKeys(directory: start, keyPrefix: keyPrefix, into: &keys)
        keys = keys.filter { $0.hasPrefix(prefix) && $0.utf8.lexicographicallyPrecedes(startAfter.utf8) == false && $0 != startAfter }
        keys.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var objects: [ObjectInfo] = []
        var truncated = false
        for key in keys {
            if objects.count >= maxKeys { truncated = true; break }
            // A key deleted since the walk is simply skipped.
            if let info = try head(dir, key: key, options: GetOptions()) { objects.append(info) }
        }
        return ListPage(objects: objects, truncated: truncated)
    }

    public func delete(_ bucket: String, keys: [String]) throws {
        let dir = try existingBucket(bucket)
        for key in keys {
            let path = try ObjectPath(key: key)
            let link = "\(dir)/objects/\(path.linkPath)"
            let version: String? = try withKeyLock(key) {
                let v = LocalFiles.readLink(link)
                if v != nil { unlink(link) }
                return v
            }
            guard let version else { continue }
            LocalFiles.removeTree("\(dir)/versions/\(version)")
            LocalFiles.removeEmptyParents(of: link, stopAt: "\(dir)/objects")
        }
    }

    public func localPath(_ bucket: String, key: String) throws -> String? {
        let dir = try existingBucket(bucket)
        let path = try ObjectPath(key: key)
        guard let version = LocalFiles.readLink("\(dir)/objects/\(path.linkPath)") else { throw ObjectStoreError.noSuchKey(key) }
        return "\(dir)/versions/\(version)/data"
    }

    public func url(_ bucket: String, key: String, expiresIn seconds: Int) throws -> String {
        guard let path = try localPath(bucket, key: key) else { throw ObjectStoreError.noSuchKey(key) }
        return "file://" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path)
    }

    /// Removes versions no symlink names that are older than `age` seconds: the leftovers of
    /// writes interrupted by a crash. Never touches a version a writer may still be filling.
    public func collectGarbage(_ bucket: String, olderThan age: Double = 3600) throws -> Int {
        let dir = try existingBucket(bucket)
        var keys: [String] = []
        collectKeys(directory: "\(dir)/objects", keyPrefix: "", into: &keys)
        var live = Set<String>()
        for key in keys {
            if let path = try? ObjectPath(key: key), let v = LocalFiles.readLink("\(dir)/objects/\(path.linkPath)") { live.insert(v) }
        }
        let cutoff = Date().timeIntervalSince1970 - age
        var removed = 0
        for version in LocalFiles.entries("\(dir)/versions") where !live.contains(version) {
            var st = stat()
            guard stat("\(dir)/versions/\(version)", &st) == 0, Double(st.st_mtim.tv_sec) < cutoff else { continue }
            LocalFiles.removeTree("\(dir)/versions/\(version)")
            removed += 1
        }
        return removed
    }

    // MARK: internals

    private static func checkedBucket(_ bucket: String) throws -> String {
        guard bucket.hasPrefix("/"), !bucket.contains("\0"), bucket.count > 1 else {
            throw ObjectStoreError.invalidName("a local store must be an absolute directory path: \(bucket)")
        }
        var path = bucket
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    private func existingBucket(_ bucket: String) throws -> String {
        let dir = try Self.checkedBucket(bucket)
        guard try bucketExists(dir) else { throw ObjectStoreError.noSuchBucket(dir) }
        return dir
    }

    private func withKeyLock<R: Sendable>(_ key: String, _ body: () throws -> R) throws -> R {
        var hasher = Hasher()
        hasher.combine(key)
        let lock = keyLocks[Int(UInt(bitPattern: hasher.finalize()) % UInt(keyLocks.count))]
        return try lock.mutex.withLock { _ in try body() }
    }

    private func writeData(_ body: any ByteSource, to path: String, executable: Bool) throws -> UInt64 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalFiles.error("create \(path)", errno) }
        defer { close(fd) }
        let bufferSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while true {
            // A source's own error (the client cancelled) propagates unchanged.
            let n = try body.read(into: buffer)
            if n == 0 { break }
            try LocalFiles.writeAll(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), what: path)
            total += UInt64(n)
        }
        if durable && fdatasync(fd) != 0 { throw LocalFiles.error("fsync \(path)", errno) }
        // Read-only, so a client that hard-links it cannot change the store through the link;
        // owner-executable when the file is, so that a link to it runs.
        fchmod(fd, executable ? 0o500 : 0o400)
        return total
    }

    private struct OpenedVersion {
        var info: ObjectInfo
        var data: Int32
    }

    /// Resolves the key's symlink and opens its version consistently: a version replaced or
    /// deleted while it is being opened is retried, never mixed with another.
    private func openVersion(dir: String, path: ObjectPath, key: String, wantData: Bool) throws -> OpenedVersion {
        for _ in 0..<16 {
            guard let version = LocalFiles.readLink("\(dir)/objects/\(path.linkPath)") else { throw ObjectStoreError.noSuchKey(key) }
            let versionDir = open("\(dir)/versions/\(version)", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if versionDir < 0 { continue }
            defer { close(versionDir) }
            var data: Int32 = -1
            if wantData {
                data = openat(versionDir, "data", O_RDONLY | O_CLOEXEC)
                if data < 0 { continue }
            }
            guard let metaBytes = LocalFiles.readAll(at: versionDir, "meta"),
                  let record = VersionRecord(decoding: metaBytes) else {
                if data >= 0 { close(data) }
                continue
            }
            let info = ObjectInfo(key: key, size: record.size, etag: version, metadata: record.metadata, lastModified: record.lastModified)
            return OpenedVersion(info: info, data: data)
        }
        throw ObjectStoreError.unavailable("\(key) is changing too fast to read")
    }

    private func collectKeys(directory: String, keyPrefix: String, into keys: inout [String]) {
        for name in LocalFiles.entries(directory) {
            if name.hasSuffix(".obj") {
                keys.append(keyPrefix + name.dropLast(4))
            } else if name.hasSuffix(".d") && !name.hasPrefix(".") {
                collectKeys(directory: "\(directory)/\(name)", keyPrefix: keyPrefix + name.dropLast(2) + "/", into: &keys)
            } else if name.hasSuffix(".d") {
                collectKeys(directory: "\(directory)/\(name)", keyPrefix: keyPrefix + name.dropLast(2) + "/", into: &keys)
            }
        }
    }
}

/// Where a key lives under `objects/`: every component but the last becomes `<c>.d`, the last
/// `<c>.obj`, so no key's directory can collide with another key's symlink.
struct ObjectPath {
    let linkPath: String
    let depth: Int

    /// The symlink's target: a relative path to the version directory, so that the store can
    /// be browsed with ordinary tools (`cat objects/jobs.d/<id>.obj/data`).
    func versionTarget(_ version: String) -> String {
        String(repeating: "../", count: depth) + "versions/" + version
    }

    init(key: String) throws {
        let components = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard key.utf8.count <= 1024, components.allSatisfy(Self.isValidComponent) else {
            throw ObjectStoreError.invalidName("key not storable in a local store: \(key.debugDescription)")
        }
        depth = components.count
        linkPath = components.dropLast().map { "\($0).d" }.joined(separator: "/")
            + (components.count > 1 ? "/" : "") + "\(components.last!).obj"
    }

    static func isValidComponent(_ c: String) -> Bool {
        !c.isEmpty && c != "." && c != ".." && c.utf8.count <= 240 && !c.utf8.contains(0)
    }
}

/// The `meta` file of a version.
struct VersionRecord: Codable {
    var key: String
    var size: UInt64
    var metadata: [String: String]
    var lastModified: Double

    init(key: String, size: UInt64, metadata: [String: String], lastModified: Double) {
        self.key = key
        self.size = size
        self.metadata = metadata
        self.lastModified = lastModified
    }

    init?(decoding bytes: [UInt8]) {
        guard let r = try? JSONDecoder().decode(VersionRecord.self, from: Data(bytes)) else { return nil }
        self = r
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return [UInt8]((try? encoder.encode(self)) ?? Data())
    }
}
