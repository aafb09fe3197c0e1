import Foundation

/// The rule every client and the daemon use to find the socket: `$JOBSTORED_SOCKET`, else
/// `$XDG_RUNTIME_DIR/jobstored.sock`, else `/tmp/jobstored-$UID/jobstored.sock`.
public enum SocketPath {
    /// The default path. With `preparingDirectory` (the daemon), the `/tmp` fallback directory is
    /// created 0700 and refused unless this uid owns it with no access for others.
    public static func defaultPath(preparingDirectory: Bool = false) throws(SocketError) -> String {
        let env = ProcessInfo.processInfo.environment
        if let explicit = env["JOBSTORED_SOCKET"], !explicit.isEmpty { return explicit }
        if let runtime = env["XDG_RUNTIME_DIR"], !runtime.isEmpty { return "\(runtime)/jobstored.sock" }
        let dir = "/tmp/jobstored-\(getuid())"
        if preparingDirectory {
            // A directory in /tmp that someone else made first must not be trusted.
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw SocketError("cannot create \(dir)", errno: errno) }
            var st = stat()
            guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == getuid(), st.st_mode & 0o077 == 0 else {
                throw SocketError("\(dir) must be a directory owned by uid \(getuid()) with mode 0700")
            }
        }
        return "\(dir)/jobstored.sock"
    }
}
