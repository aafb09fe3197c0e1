import Foundation
#if canImport(Glibc)
import Glibc
import SystemCall
#endif

/// The POSIX file operations the local store is built from, each mapping errno to an
/// `ObjectStoreError` with the path in its message.
enum LocalFiles {
    static func error(_ what: String, _ code: Int32) -> ObjectStoreError {
        let text = "\(what): \(String(cString: strerror(code)))"
        switch code {
        case ENOENT: return .noSuchKey(text)
        case EACCES, EPERM: return .permissionDenied(text)
        case ENAMETOOLONG: return .invalidName(text)
        default: return .io(text)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) != 0 && !(errno == EEXIST && isDirectory(path)) {
            throw error("mkdir \(path)", errno)
        }
    }

    static func makeDirectories(_ path: String, mode: mode_t) throws {
        if isDirectory(path) { return }
        let parent = (path as NSString).deletingLastPathComponent
        if parent != path && !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        try makeDirectory(path, mode: mode)
    }

    /// The version id a key's symlink names (the last component of its target).
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    static func entries(_ directory: String) -> [String] {
        guard let d = opendir(directory) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            chmod(path, 0o700)
            for name in entries(path) { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Removes now-empty directories between `path` and `stopAt` (exclusive); races with
    /// writers creating entries are harmless (rmdir of a non-empty directory fails).
    static func removeEmptyParents(of path: String, stopAt: String) {
        var dir = (path as NSString).deletingLastPathComponent
        while dir.count > stopAt.count && dir.hasPrefix(stopAt) {
            if rmdir(dir) != 0 { return }
            dir = (dir as NSString).deletingLastPathComponent
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, what: String) throws {
        var done = 0
        while done < bytes.count {
            let n = SystemCall.retryingInterrupts { write(fd, bytes.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                throw error("write \(what)", errno)
            }
            done += n
        }
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String, durable: Bool) throws {
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw error("create \(temporary)", errno) }
        do {
            try bytes.withUnsafeBytes { raw in try writeAll(fd, raw, what: temporary) }
            if durable && fdatasync(fd) != 0 { throw error("fsync \(temporary)", errno) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw error("rename \(path)", errno) }
    }

    static func readAll(at directory: Int32, _ name: String) -> [UInt8]? {
        let fd = openat(directory, name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = SystemCall.retryingInterrupts { read(fd, &buffer, buffer.count) }
            if n < 0 { return nil }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
        }
    }
}
