import Foundation

/// Threads that run calls. Calls block (on disk, on the S3 session), so each runs on a thread
/// of its own; threads are kept for reuse rather than created per call, which was measured
/// as the fastest way to serve many short calls on this machine kind.
final class WorkerPool: @unchecked Sendable {
    private let state = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var idle = 0
    private var threads = 0
    private let maxThreads: Int

    init(maxThreads: Int) {
        self.maxThreads = maxThreads
    }

    /// Every queued job gets a thread of its own: an idle one if there are more idle threads
    /// than queued jobs, else a new one. (Counting only `idle > 0` is not enough: a thread
    /// signalled for one job stays "idle" until it wakes, and a second job would wait behind a
    /// long call, such as an upload whose client first waits for that second call: a deadlock
    /// a Toil leader hit, nesting a write inside a write.)
    func submit(_ job: @escaping @Sendable () -> Void) {
        state.lock()
        jobs.append(job)
        if idle >= jobs.count - head {
            state.signal()
        } else if threads < maxThreads {
            threads += 1
            let thread = Thread { [self] in work() }
            thread.name = "jobstored-worker"
            thread.stackSize = 1 << 20
            thread.start()
        }
        state.unlock()
    }

    private func work() {
        state.lock()
        while true {
            while head == jobs.count {
                idle += 1
                state.wait()
                idle -= 1
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            state.unlock()
            job()
            state.lock()
        }
    }
}
