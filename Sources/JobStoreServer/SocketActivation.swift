import Foundation
import JobStoreWire

/// systemd socket activation: the service manager binds the socket (`jobstored.socket`), keeps
/// it while the daemon restarts, and passes it as fd 3 with `LISTEN_PID`/`LISTEN_FDS`.
///
/// Why support it: connections that arrive while the daemon restarts or upgrades queue in the
/// socket systemd holds instead of failing, and the socket's owner, group and mode are set in
/// one unit file.
public enum SocketActivation {
    /// The first passed descriptor (sd_listen_fds' SD_LISTEN_FDS_START).
    static let firstDescriptor: Int32 = 3

    /// The listener systemd passed to this process, or nil when none was. The variables are
    /// removed so that processes this daemon starts do not take the socket for theirs.
    public static func passedListener(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SocketServer.PreparedListener? {
        guard let pidText = environment["LISTEN_PID"], let pid = Int32(pidText), pid == getpid(),
              let countText = environment["LISTEN_FDS"], let count = Int(countText), count >= 1 else { return nil }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        guard count == 1 else {
            throw SocketError("systemd passed \(count) sockets; jobstored listens on one (one ListenStream= in the .socket unit)")
        }
        let fd = firstDescriptor
        var type: Int32 = 0
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        var address = sockaddr_un()
        var addressLength = socklen_t(MemoryLayout<sockaddr_un>.size)
        let isUnixStream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == Int32(SOCK_STREAM.rawValue)
            && withUnsafeMutablePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &addressLength) } }) == 0
            && address.sun_family == sa_family_t(AF_UNIX)
        length = socklen_t(MemoryLayout<Int32>.size)
        guard isUnixStream, getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else {
            throw SocketError("the socket systemd passed is not a listening Unix stream socket (ListenStream=/path in the .socket unit)")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var prepared = SocketServer.PreparedListener(fd: fd, path: "", device: 0, inode: 0, replacedPID: nil)
        prepared.adopted = true
        return prepared
    }

    /// The path a passed socket is bound to (for logs and `--print-config`).
    public static func path(of listener: SocketServer.PreparedListener) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        guard withUnsafeMutablePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener.fd, $0, &length) } }) == 0 else {
            return nil
        }
        return withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
