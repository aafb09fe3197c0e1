#if canImport(Glibc)
import Glibc
#endif

/// The one place a blocking system call is retried after a signal interrupted it (EINTR), as
/// swift-nio's `syscall(blocking:)` is: callers wrap the call and handle only the failures
/// that mean something (a loop of their own around EINTR is how one gets forgotten).
public enum SystemCall {
    /// Runs `call` again for as long as it fails with EINTR, and returns its first other
    /// result: the call's own, so `-1` with `errno` set still means the failure it reports.
    @inlinable
    public static func retryingInterrupts<Result: FixedWidthInteger>(_ call: () -> Result) -> Result {
        while true {
            let result = call()
            if result == -1 && errno == EINTR { continue }
            return result
        }
    }
}
