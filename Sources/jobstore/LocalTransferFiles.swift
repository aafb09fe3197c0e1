import Foundation
import JobStoreWire
import SystemCall

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
        let n = buffer.withUnsafeMutableBytes { raw in SystemCall.retryingInterrupts { Glibc.read(fd, raw.baseAddress, raw.count) } }
        if n >= 0 { return n }
        throw CommandFailure(status: CommandFailure.failed, message: "reading \(basename): \(String(cString: strerror(errno)))")
    }

    func close() { if owned { Glibc.close(fd) } }
}

/// The node side of a download: stdout, or a temporary file beside the destination that is
/// renamed over it only when every byte arrived (an interrupted copy leaves the old file, and
/// SIGINT/SIGTERM/SIGHUP remove the temporary file before the command dies). A replaced file
/// keeps its permission bits; a new one gets 0666 less the umask, plus execute when the
/// store's file is executable.
final class LocalTarget {
    let fd: Int32
    let path: String?
    let temporary: String?
    /// The mode of the file being replaced, if one was there.
    private let existingMode: mode_t?
    private var closed = false

    init(_ endpoint: CopyEndpoint, defaultName: String) throws {
        switch endpoint {
        case .standardStream:
            (fd, path, temporary, existingMode) = (1, nil, nil, nil)
        case .local(var destination):
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory), isDirectory.boolValue {
                destination = (destination as NSString).appendingPathComponent(defaultName)
            }
            var st = stat()
            existingMode = stat(destination, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? st.st_mode & 0o7777 : nil
            let directory = (destination as NSString).deletingLastPathComponent
            let name = (destination as NSString).lastPathComponent
            let temp = (directory.isEmpty ? "." : directory) + "/.\(name).jobstore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            InterruptedDownload.track(temp)
            let opened = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, existingMode ?? 0o666)
            guard opened >= 0 else {
                InterruptedDownload.track(nil)
                throw LocalFileError.cannotOpen(destination, errno)
            }
            (fd, path, temporary) = (opened, destination, temp)
        default:
            preconditionFailure("not a local endpoint")
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = SystemCall.retryingInterrupts { Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                throw CommandFailure(status: CommandFailure.failed, message: "writing \(path ?? "stdout"): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Makes the download visible: mode, fsync, rename.
    func commit(executable: Bool) throws {
        guard let path, let temporary else { return }
        if let existingMode {
            fchmod(fd, existingMode)
        } else if executable {
            let mask = umask(0)
            umask(mask)
            fchmod(fd, 0o777 & ~mask)
        }
        let synced = fsync(fd) == 0
        let error = errno
        closed = true
        guard synced, Glibc.close(fd) == 0 else {
            discard()
            throw CommandFailure(status: CommandFailure.failed, message: "writing \(path): \(String(cString: strerror(synced ? errno : error)))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            discard()
            throw CommandFailure(status: CommandFailure.failed, message: "cannot write \(path): \(reason)")
        }
        InterruptedDownload.track(nil)
    }

    /// Drops the temporary file (once; the descriptor is closed at most once).
    func discard() {
        guard let temporary else { return }
        if !closed {
            closed = true
            Glibc.close(fd)
        }
        unlink(temporary)
        InterruptedDownload.track(nil)
    }
}

/// The temporary file of the download in progress, removed by a signal handler if the command
/// is interrupted. A C string made once, so the handler only calls unlink(2) and _exit(2).
enum InterruptedDownload {
    nonisolated(unsafe) private static var pending: UnsafeMutablePointer<CChar>?

    /// Registers `path` (nil: nothing pending) and installs the handlers on first use.
    static func track(_ path: String?) {
        let previous = pending
        pending = path.map { strdup($0) }
        if let previous { free(previous) }
        guard path != nil else { return }
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(signal) { number in
                if let pending = InterruptedDownload.pending { unlink(pending) }
                _exit(128 + number)
            }
        }
    }
}

enum LocalFileError {
    static func cannotOpen(_ path: String, _ code: Int32) -> CommandFailure {
        CommandFailure(status: code == ENOENT ? CommandFailure.notFound : code == EACCES ? CommandFailure.denied : CommandFailure.failed,
                       message: "cannot open \(path): \(String(cString: strerror(code)))")
    }
}
