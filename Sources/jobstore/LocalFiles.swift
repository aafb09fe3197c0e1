import Foundation
import JobStoreWire

/// The node side of an upload: a file (its size, name and executable bit) or stdin.
final class LocalSource {
    let fd: Int32
    let size: UInt64?
    let basename: String
    let executable: Bool
    private let owned: Bool

    init(_ endpoint: CopyEndpoint) throws {
        switch endpoint {
        case .standardStream:
            (fd, owned, basename) = (0, false, "stream")
        case .local(let path):
            let opened = open(path, O_RDONLY | O_CLOEXEC)
            guard opened >= 0 else { throw LocalFileError.cannotOpen(path, errno) }
            (fd, owned, basename) = (opened, true, (path as NSString).lastPathComponent)
        default:
            preconditionFailure("not a local endpoint")
        }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            if owned { Glibc.close(fd) }
            throw CommandFailure(status: CommandFailure.failed, message: "\(basename) is a directory")
        }
        let regular = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        size = regular ? UInt64(st.st_size) : nil
        executable = regular && st.st_mode & S_IXUSR != 0
    }

    /// Reads up to the buffer's size; 0 at the end.
    func read(into buffer: inout [UInt8]) throws -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            if errno != EINTR { throw CommandFailure(status: CommandFailure.failed, message: "reading \(basename): \(String(cString: strerror(errno)))") }
        }
    }

    func close() { if owned { Glibc.close(fd) } }
}

/// The node side of a download: stdout, or a temporary file beside the destination that is
/// renamed over it only when every byte arrived (an interrupted copy leaves the old file).
final class LocalTarget {
    let fd: Int32
    let path: String?
    let temporary: String?

    init(_ endpoint: CopyEndpoint, defaultName: String) throws {
        switch endpoint {
        case .standardStream:
            (fd, path, temporary) = (1, nil, nil)
        case .local(var destination):
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory), isDirectory.boolValue {
                destination = (destination as NSString).appendingPathComponent(defaultName)
            }
            let directory = (destination as NSString).deletingLastPathComponent
            let name = (destination as NSString).lastPathComponent
            let temp = (directory.isEmpty ? "." : directory) + "/.\(name).jobstore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let opened = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            guard opened >= 0 else { throw LocalFileError.cannotOpen(destination, errno) }
            (fd, path, temporary) = (opened, destination, temp)
        default:
            preconditionFailure("not a local endpoint")
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw CommandFailure(status: CommandFailure.failed, message: "writing \(path ?? "stdout"): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Makes the download visible: fsync, the executable bit (as the umask allows), rename.
    func commit(executable: Bool) throws {
        guard let path, let temporary else { return }
        if executable {
            let mask = umask(0)
            umask(mask)
            fchmod(fd, 0o777 & ~mask)
        }
        guard fsync(fd) == 0, Glibc.close(fd) == 0 else {
            unlink(temporary)
            throw CommandFailure(status: CommandFailure.failed, message: "writing \(path): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CommandFailure(status: CommandFailure.failed, message: "cannot write \(path): \(reason)")
        }
    }

    func discard() {
        guard let temporary else { return }
        Glibc.close(fd)
        unlink(temporary)
    }
}

enum LocalFileError {
    static func cannotOpen(_ path: String, _ code: Int32) -> CommandFailure {
        CommandFailure(status: code == ENOENT ? CommandFailure.notFound : code == EACCES ? CommandFailure.denied : CommandFailure.failed,
                       message: "cannot open \(path): \(String(cString: strerror(code)))")
    }
}
