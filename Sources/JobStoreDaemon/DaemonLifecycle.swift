/// The daemon's life as a state machine: idle → starting → serving → draining → stopped, and
/// starting → stopped when a start fails.
///
/// Why a value of its own: a start, a drain and a stop can be asked for from different threads
/// (the signal wait, a test, a failed start's clean-up), and each must happen once, in order.
/// Kept pure so that every transition, legal or not, is tested without a socket
/// (`DaemonLifecycleTests`), as hummingbird models its `Server`.
public struct DaemonLifecycle: Sendable, Equatable {
    /// Where the daemon is in its life; only `DaemonLifecycle`'s transitions move it.
    public enum State: Sendable, Equatable {
        case idle, starting, serving, draining, stopped
    }

    /// A transition asked for in a state that does not allow it.
    public struct Refused: Error, Equatable, CustomStringConvertible {
        public let action: String
        public let state: State
        public var description: String { "cannot \(action) a daemon that is \(state)" }

        public init(action: String, state: State) {
            self.action = action
            self.state = state
        }
    }

    public private(set) var state: State = .idle

    public init() {}

    /// idle → starting: only a daemon never started may start (a stopped one is not restarted:
    /// its socket and cache have been let go; make a new one).
    public mutating func beginStart() throws(Refused) {
        guard state == .idle else { throw Refused(action: "start", state: state) }
        state = .starting
    }

    /// starting → serving, or starting → stopped when the start failed.
    public mutating func finishStart(succeeded: Bool) throws(Refused) {
        guard state == .starting else { throw Refused(action: "finish starting", state: state) }
        state = succeeded ? .serving : .stopped
    }

    /// serving → draining: true when the caller is the one to drain. Draining an idle daemon
    /// stops it (nothing to drain); a second drain, or one of a stopped daemon, is a no-op
    /// (false), so a signal arriving twice does no harm. A daemon still starting refuses.
    public mutating func beginDrain() throws(Refused) -> Bool {
        switch state {
        case .serving:
            state = .draining
            return true
        case .idle:
            state = .stopped
            return false
        case .draining, .stopped:
            return false
        case .starting:
            throw Refused(action: "drain", state: state)
        }
    }

    /// draining → stopped.
    public mutating func finishDrain() throws(Refused) {
        guard state == .draining else { throw Refused(action: "finish draining", state: state) }
        state = .stopped
    }
}
