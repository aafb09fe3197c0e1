import Foundation
import JobStoreWire
import Logging
import SystemCall

/// The daemon's listening socket: accepts connections, checks who connects, and owns the
/// worker pool and counters every connection shares.
public final class SocketServer: @unchecked Sendable {
    public let path: String
    let service: any JobStoreService
    let stats: ServerStats
    let pool: WorkerPool
    private let logger: Logger
    private let allowedUIDs: Set<UInt32>
    private let allowedGIDs: Set<UInt32>
    private let lock = NSCondition()
    /// The socket accepted on; nil before `start` (or when connections come through `admit` only).
    private var listening: PreparedListener?
    private var connections: [ObjectIdentifier: Connection] = [:]
    private var stopping = false

    /// - Parameters:
    ///   - allowedUIDs: peers whose uid is here may connect, besides the daemon's own uid.
    /// Seconds a client may stall in the middle of a frame before its connection is closed.
    let midFrameTimeout: Double

    public init(path: String, service: any JobStoreService, stats: ServerStats, logger: Logger,
                allowedUIDs: Set<UInt32> = [], allowedGIDs: Set<UInt32> = [], maxThreads: Int = 1024,
                midFrameTimeout: Double = 30) {
        self.midFrameTimeout = midFrameTimeout
        self.path = path
        self.service = service
        self.stats = stats
        self.logger = logger
        self.allowedUIDs = allowedUIDs.union([getuid()])
        self.allowedGIDs = allowedGIDs
        self.pool = WorkerPool(maxThreads: maxThreads)
    }

    /// A socket bound and listening at a path, not yet accepting: connections queue in its
    /// backlog until `start(listeningOn:)`.
    public struct PreparedListener: Sendable {
        let fd: Int32
        let path: String
        let device: UInt64
        let inode: UInt64
        /// The daemon whose socket this one replaced (`takeover`), to be told to drain; nil
        /// also when its pid is unknown (see `replacedLiveDaemon`).
        public let replacedPID: pid_t?
        /// Whether a live daemon's socket was replaced. Its pid may be unknown: a peer in
        /// another PID namespace (a pod beside ours) is reported as pid 0, and kill(0, …)
        /// would signal this daemon's own process group.
        public var replacedLiveDaemon = false
        /// A socket another process made and passed to us (systemd socket activation): it
        /// outlives this daemon, so it is never shut down or unlinked, only no longer accepted on.
        var adopted = false

        /// Lets go of a listener that will not be served (a start that failed after it was
        /// prepared): closes it and removes its socket file if that is still this one. An
        /// adopted listener belongs to its passer and is left alone.
        /// The socket file is removed only if it is still the one made here (a daemon that took
        /// over owns it now). Shutdown lets go of a served listener the same way.
        public func discard() {
            guard !adopted else { return }
            close(fd)
            var st = stat()
            if lstat(path, &st) == 0, UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode {
                unlink(path)
            }
        }
    }

    /// Creates the socket's directory (0700 when the daemon creates it), replaces a stale
    /// socket left by a dead daemon, and refuses to replace a live one unless `takeover`: then
    /// the new socket is renamed over the old one in one step (no client ever finds no socket)
    /// and the old daemon's pid is returned for the caller to signal.
    public static func prepareListener(path: String, takeover: Bool = false) throws -> PreparedListener {
        let dir = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        var replaced: pid_t?
        var replacedLive = false
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw SocketError("\(path) exists and is not a socket")
            }
            if let live = try? UnixSocket.connect(path: path) {
                let peer = UnixSocket.peerCredentials(live)
                close(live)
                guard takeover else { throw SocketError("another daemon is serving \(path) (--takeover replaces it)") }
                replacedLive = true
                replaced = peer.flatMap { $0.pid > 0 ? pid_t($0.pid) : nil }
            } else {
                unlink(path)
            }
        }
        let fd = try UnixSocket.listen(path: path, mode: 0o600)
        var mine = stat()
        guard fstatat(AT_FDCWD, path, &mine, AT_SYMLINK_NOFOLLOW) == 0 else {
            close(fd)
            throw SocketError("stat \(path)", errno: errno)
        }
        var prepared = PreparedListener(fd: fd, path: path, device: UInt64(mine.st_dev), inode: UInt64(mine.st_ino), replacedPID: replaced)
        prepared.replacedLiveDaemon = replacedLive
        return prepared
    }

    /// Starts accepting on `prepared` (by default: a listener prepared now, refusing to replace
    /// a live daemon).
    public func start(listeningOn prepared: PreparedListener? = nil) throws {
        let ready = try prepared ?? Self.prepareListener(path: path)
        listening = ready
        let thread = Thread { [self] in acceptLoop(ready.fd, adopted: ready.adopted) }
        thread.name = "jobstored-accept"
        thread.start()
        logger.info("listening on \(path)")
    }

    private func acceptLoop(_ listener: Int32, adopted: Bool) {
        while true {
            if adopted {
                // The listener cannot be shut down to wake accept (its owner still listens on
                // it): wait with a timeout and look at the stop flag between waits.
                var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                if isStopping {
                    close(listener)
                    return
                }
                if SystemCall.retryingInterrupts { poll(&ready, 1, 200) } <= 0 { continue }
            }
            let fd = SystemCall.retryingInterrupts { accept(listener, nil, nil) }
            if fd < 0 {
                // EAGAIN: a passed socket may be non-blocking (NonBlocking=yes) after a wakeup
                // another process took.
                if errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == EAGAIN {
                    if errno == EMFILE || errno == ENFILE { usleep(10_000) }
                    if isStopping { return }
                    continue
                }
                if !isStopping { logger.critical("accept on \(path) failed: \(String(cString: strerror(errno))); no new connections") }
                return
            }
            if !admit(fd) { return }
        }
    }

    /// Serves one connected socket as a client's connection: the seam between how connections
    /// arrive and what is done with them. The accept loop passes each accepted socket here;
    /// in-process tests pass one end of a socketpair (its peer credentials are this process's).
    /// The peer is checked as at accept (a refused peer is told PERMISSION_DENIED and closed).
    /// Takes ownership of `fd`. Returns false, closing `fd`, once the server is stopping.
    @discardableResult
    public func admit(_ fd: Int32) -> Bool {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard let cred = UnixSocket.peerCredentials(fd) else {
            close(fd)
            return true
        }
        let peer = Peer(pid: cred.pid, uid: cred.uid, gid: cred.gid)
        guard allowedUIDs.contains(peer.uid) || allowedGIDs.contains(peer.gid)
                || (!allowedGIDs.isEmpty && !allowedGIDs.isDisjoint(with: Self.supplementaryGroups(pid: peer.pid, uid: peer.uid))) else {
            logger.warning("refused connection from pid \(peer.pid) uid \(peer.uid) gid \(peer.gid)")
            let error = JobStoreError(.permissionDenied, "uid \(peer.uid) may not use this daemon")
            try? FrameWriter(fd: fd).send(FrameHeader(payloadLength: 0, callID: 0, code: error.code.rawValue, type: .response),
                                          payload: error.status.serialized())
            close(fd)
            return true
        }
        let connection = Connection(fd: fd, peer: peer, server: self, logger: logger)
        lock.lock()
        if stopping {
            lock.unlock()
            close(fd)
            return false
        }
        connections[ObjectIdentifier(connection)] = connection
        lock.unlock()
        stats.connectionOpened()
        let thread = Thread { connection.run() }
        thread.name = "jobstored-connection"
        thread.stackSize = 1 << 20
        thread.start()
        return true
    }

    /// The supplementary groups of the connecting process (SO_PEERCRED gives only its primary
    /// gid), from /proc/PID/status — only while that pid still runs as `uid` (a process that
    /// exited and whose pid was reused gets no groups).
    static func supplementaryGroups(pid: Int32, uid: UInt32) -> Set<UInt32> {
        guard pid > 0, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return [] }
        var groups = Set<UInt32>()
        var uidMatches = false
        for line in status.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            if fields.first == "Uid:", fields.count > 2 { uidMatches = UInt32(fields[2]) == uid }  // the effective uid
            if fields.first == "Groups:" { groups = Set(fields.dropFirst().compactMap { UInt32($0) }) }
        }
        return uidMatches ? groups : []
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    func connectionClosed(_ connection: Connection) {
        lock.lock()
        connections[ObjectIdentifier(connection)] = nil
        lock.broadcast()
        lock.unlock()
        stats.connectionClosed()
    }

    /// Stops accepting, stops reading from every connection (uploads in progress are cancelled
    /// and store nothing), lets calls in flight answer, and returns once every connection has
    /// closed or `deadline` seconds have passed. Returns the number of connections left.
    @discardableResult
    public func shutdown(deadline: TimeInterval) -> Int {
        lock.lock()
        stopping = true
        let open = Array(connections.values)
        lock.unlock()
        if let listening, !listening.adopted {  // an adopted one the accept loop closes itself
            Glibc.shutdown(listening.fd, Int32(SHUT_RDWR))
            listening.discard()
        }
        for c in open { c.stopReading() }
        let limit = Date().addingTimeInterval(deadline)
        lock.lock()
        while !connections.isEmpty && lock.wait(until: limit) {}
        let left = connections.count
        lock.unlock()
        logger.info("stopped; \(left) connection(s) still open at the deadline")
        return left
    }
}
