#if canImport(Glibc)
import Glibc
#endif

/// A failure of the socket itself (not of a call): connect refused, peer gone, broken framing.
public struct SocketError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let errno: Int32
    public init(_ message: String, errno: Int32 = 0) {
        self.message = message
        self.errno = errno
    }
    public var description: String {
        errno == 0 ? message : "\(message): \(String(cString: strerror(errno)))"
    }
}

/// Thin, explicit wrappers over the AF_UNIX calls both the daemon and clients make.
public enum UnixSocket {
    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws(SocketError) -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity, !bytes.isEmpty, !bytes.contains(0) else {
            throw SocketError("socket path must be 1..\(capacity - 1) bytes without NUL: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Connects to a listening socket; the returned descriptor is close-on-exec.
    public static func connect(path: String) throws(SocketError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket", errno: errno) }
        let rc = try withAddress(path) { Glibc.connect(fd, $0, $1) }
        if rc != 0 {
            let e = errno
            close(fd)
            throw SocketError("connect \(path)", errno: e)
        }
        return fd
    }

    /// Binds and listens on `path`, with the socket file's mode set to `mode`. The socket is
    /// bound under a temporary name and renamed to `path` once it listens, so a client that
    /// sees the path can connect (no "connection refused" window while a daemon starts).
    public static func listen(path: String, mode: mode_t = 0o600, backlog: Int32 = 512) throws(SocketError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket", errno: errno) }
        let temporary = "\(path).\(getpid())"
        // A path too long for a sibling name is bound directly.
        let bound = temporary.utf8.count < 108 ? temporary : path
        unlink(temporary)
        // Create the socket file with no permissions for others from the first instant.
        let old = umask(0o777 & ~mode)
        let rc = try withAddress(bound) { Glibc.bind(fd, $0, $1) }
        let bindErrno = errno
        umask(old)
        if rc != 0 {
            close(fd)
            throw SocketError("bind \(bound)", errno: bindErrno)
        }
        chmod(bound, mode)
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            close(fd)
            unlink(bound)
            throw SocketError("listen \(path)", errno: e)
        }
        if bound != path && rename(bound, path) != 0 {
            let e = errno
            close(fd)
            unlink(bound)
            throw SocketError("rename \(bound) to \(path)", errno: e)
        }
        return fd
    }

    /// The peer's pid, uid and gid (SO_PEERCRED).
    public static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (hidden behind _GNU_SOURCE in Swift's Glibc)
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        var len = socklen_t(12)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { return nil }
        return (cred.0, cred.1, cred.2)
    }
}
