import Foundation
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// The cache's files: `entries/` holds finished entries (data + manifest), `tmp/` fills in
/// progress, `lock` keeps a second daemon out, `clean` marks an orderly shutdown.
///
/// Why files are published data-first, manifest-second: an entry exists only when its manifest
/// does, and the manifest is renamed into place after the complete data file, so a crash at any
/// point leaves either a whole entry or debris the next start-up removes.
struct CacheDirectory {
    let root: String
    var entries: String { "\(root)/entries" }
    var temporary: String { "\(root)/tmp" }
    private let lockFD: Int32

    /// Creates the tree (0700) and takes the directory's lock, waiting up to `lockWait`
    /// seconds for another daemon to let go of it (one taking over waits for the one draining).
    init(root: String, lockWait: Double = 0) throws {
        self.root = root
        for dir in [root, "\(root)/entries", "\(root)/tmp"] {
            try Self.makeDirectories(dir)
        }
        // Another user's files in the cache would be served to our workers: refuse.
        var st = stat()
        guard stat(root, &st) == 0, st.st_uid == geteuid() else {
            throw CacheError("cache directory \(root) is not owned by this user")
        }
        chmod(root, 0o700)
        let fd = open("\(root)/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CacheError("cannot open \(root)/lock: \(String(cString: strerror(errno)))") }
        let deadline = Date().addingTimeInterval(lockWait)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard Date() < deadline else {
                close(fd)
                throw CacheError("cache directory \(root) is in use by another daemon (its lock is held)")
            }
            usleep(50_000)
        }
        lockFD = fd
    }

    func unlock() {
        close(lockFD)
    }

    private static func makeDirectories(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw CacheError("cannot create cache directory \(path): \(error.localizedDescription)")
        }
    }

    // MARK: the clean-shutdown marker

    /// Whether the last daemon shut down in order; removes the marker, so a crash from now on
    /// is noticed at the next start.
    func takeCleanMarker() -> Bool {
        unlink("\(root)/clean") == 0
    }

    func writeCleanMarker() {
        let fd = open("\(root)/clean", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
    }

    // MARK: entries

    func dataPath(_ name: String) -> String { "\(entries)/\(name)" }
    func manifestPath(_ name: String) -> String { "\(entries)/\(name).manifest" }

    /// A new temporary file for a fill; returns its descriptor and path.
    func createTemporary() throws -> (fd: Int32, path: String) {
        let path = "\(temporary)/\(UUID().uuidString.lowercased())"
        var fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT && restoreTree() {
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw CacheError("cannot create \(path): \(String(cString: strerror(errno)))") }
        return (fd, path)
    }

    /// Makes the tree again after someone removed it under a running daemon (an operator's
    /// `rm -rf` of a full scratch disk, a node's tmp cleaner): the cache goes on filling rather
    /// than failing every read. Returns whether the tree now exists.
    func restoreTree() -> Bool {
        (try? [root, entries, temporary].forEach(Self.makeDirectories)) != nil
    }

    /// Moves a finished fill into place under `name`, then its manifest: from this moment the
    /// entry survives restarts.
    func publish(temporary path: String, as name: String, manifest: CacheManifest, executable: Bool) throws {
        guard chmod(path, executable ? 0o500 : 0o400) == 0 else {
            throw CacheError("chmod \(path): \(String(cString: strerror(errno)))")
        }
        var renamed = rename(path, dataPath(name)) == 0
        if !renamed && errno == ENOENT && restoreTree() {  // entries/ was removed (not our fill: see rename(2))
            renamed = rename(path, dataPath(name)) == 0
        }
        guard renamed else {
            throw CacheError("rename \(path): \(String(cString: strerror(errno)))")
        }
        let manifestTemporary = "\(temporary)/\(name).manifest"
        let bytes = try manifest.encoded()
        let fd = open(manifestTemporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            unlink(dataPath(name))
            throw CacheError("cannot create \(manifestTemporary): \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { raw in SystemCall.retryingInterrupts { write(fd, raw.baseAddress, raw.count) } }
        close(fd)
        guard written == bytes.count, rename(manifestTemporary, manifestPath(name)) == 0 else {
            unlink(manifestTemporary)
            unlink(dataPath(name))
            throw CacheError("cannot write the manifest of \(name)")
        }
    }

    /// Removes an entry: manifest first, so a crash in between leaves debris, not an entry.
    func remove(_ name: String) {
        unlink(manifestPath(name))
        unlink(dataPath(name))
    }

    /// Marks an entry used (its manifest's mtime), so LRU order survives a restart.
    func touch(_ name: String) {
        utimensat(AT_FDCWD, manifestPath(name), nil, 0)
    }

    /// The finished entries on disk, after removing debris: temporary files, data without a
    /// manifest, manifests whose data is missing or of the wrong size, older duplicates of a key.
    /// Each comes with its manifest's mtime (last use).
    func load() -> [(name: String, manifest: CacheManifest, lastUsed: Double)] {
        for name in Self.names(temporary) { unlink("\(temporary)/\(name)") }
        var found: [CacheKey: (name: String, manifest: CacheManifest, lastUsed: Double)] = [:]
        var keep = Set<String>()
        let names = Self.names(entries)
        for file in names where file.hasSuffix(".manifest") {
            let name = String(file.dropLast(".manifest".count))
            var st = stat()
            guard let bytes = FileManager.default.contents(atPath: manifestPath(name)),
                  let manifest = CacheManifest.decode([UInt8](bytes)),
                  stat(dataPath(name), &st) == 0, UInt64(st.st_size) == manifest.size,
                  name.hasPrefix(manifest.key.fileStem) else {
                remove(name)
                continue
            }
            var mst = stat()
            let used = stat(manifestPath(name), &mst) == 0 ? Double(mst.st_mtim.tv_sec) + Double(mst.st_mtim.tv_nsec) / 1e9 : 0
            if let other = found[manifest.key] {
                let this: (name: String, manifest: CacheManifest, lastUsed: Double) = (name, manifest, used)
                let otherIsOlder = other.manifest.filled <= manifest.filled
                let older = otherIsOlder ? other : this
                let newer = otherIsOlder ? this : other
                remove(older.name)
                keep.remove(older.name)
                found[manifest.key] = newer
                keep.insert(newer.name)
            } else {
                found[manifest.key] = (name, manifest, used)
                keep.insert(name)
            }
        }
        for file in names where !file.hasSuffix(".manifest") && !keep.contains(file) {
            unlink(dataPath(file))
        }
        return Array(found.values)
    }

    /// Bytes free for us and the filesystem's size.
    func space() -> (free: UInt64, total: UInt64) {
        var s = statvfs()
        guard statvfs(root, &s) == 0 else { return (UInt64.max, UInt64.max) }
        return (UInt64(s.f_bavail) * UInt64(s.f_frsize), UInt64(s.f_blocks) * UInt64(s.f_frsize))
    }

    static func names(_ directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }
}

/// A cache failure of its own (the directory, its lock): never a store's error.
public struct CacheError: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
