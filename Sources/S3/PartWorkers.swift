import Foundation

/// Runs the parts of one transfer on up to `width` threads of its own, so that parts move in
/// parallel while the caller keeps reading (upload) or writing (download) in order. The first
/// failure wins: parts not yet started run with `cancelled` true (to release what they hold and
/// return) and `finish` rethrows it.
final class PartWorkers: @unchecked Sendable {
    private let width: Int
    private let condition = NSCondition()
    typealias Job = (_ cancelled: Bool) throws -> Void
    private var jobs: [Job] = []
    private var threads = 0
    private var idle = 0
    private var closed = false
    private var error: Error?

    init(width: Int) { self.width = max(1, width) }

    /// Queues a part; blocks while `width` parts are already waiting. False when a part failed.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        condition.lock()
        while jobs.count >= width && error == nil { condition.wait() }
        guard error == nil else {
            condition.unlock()
            try? job(true)
            return false
        }
        defer { condition.unlock() }
        jobs.append(job)
        if idle == 0 && threads < width {
            threads += 1
            let thread = Thread { [self] in run() }
            thread.name = "jobstored-s3-part"
            thread.start()
        }
        condition.broadcast()
        return true
    }

    /// Parts not yet started will run cancelled (the caller gave up: its reader went away).
    func cancel() {
        condition.lock()
        if error == nil { error = CancellationError() }
        condition.broadcast()
        condition.unlock()
    }

    var failure: Error? {
        condition.lock()
        defer { condition.unlock() }
        return error
    }

    /// Waits for every queued part; rethrows the first failure.
    func finish() throws {
        condition.lock()
        closed = true
        condition.broadcast()
        while threads > 0 { condition.wait() }
        let e = error
        condition.unlock()
        if let e { throw e }
    }

    private func run() {
        condition.lock()
        while true {
            while jobs.isEmpty && !closed {
                idle += 1
                condition.wait()
                idle -= 1
            }
            if jobs.isEmpty { break }
            let job = jobs.removeFirst()
            let cancelled = error != nil
            condition.broadcast()
            condition.unlock()
            do {
                try job(cancelled)
                condition.lock()
            } catch {
                condition.lock()
                if self.error == nil { self.error = error }
            }
            condition.broadcast()
        }
        threads -= 1
        condition.broadcast()
        condition.unlock()
    }
}
