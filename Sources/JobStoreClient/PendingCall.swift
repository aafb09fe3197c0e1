import Foundation
import JobStoreWire

/// The client's side of one call in flight: the frames the reader thread routes to it, in
/// order, until the terminal RESPONSE. Downloads consume DATA events as they come; the reader
/// waits when a slow consumer has too much buffered.
final class PendingCall: @unchecked Sendable {
    enum Event {
        case data([UInt8])
        case response(Result<[UInt8], any Error>)
    }

    private let state = NSCondition()
    private var events: [Event] = []
    private var head = 0
    private var bufferedBytes = 0
    private var waiter: CheckedContinuation<Event, Never>?
    private var abandoned = false
    /// The terminal response once taken, so that asking again returns it again.
    private var terminal: Result<[UInt8], any Error>?
    private(set) var finished = false
    static let bufferLimit = 8 << 20

    /// Called by the reader thread.
    func push(_ event: Event) {
        state.lock()
        if abandoned { state.unlock(); return }
        if case .data(let bytes) = event {
            while bufferedBytes >= Self.bufferLimit && !abandoned && waiter == nil { state.wait() }
            if abandoned { state.unlock(); return }
            bufferedBytes += bytes.count
        } else {
            finished = true
        }
        if let waiter {
            self.waiter = nil
            if case .data(let bytes) = event { bufferedBytes -= bytes.count }
            if case .response(let r) = event { terminal = r }
            state.unlock()
            waiter.resume(returning: event)
            return
        }
        events.append(event)
        state.unlock()
    }

    /// The next event, waiting for it without blocking a thread.
    func next() async -> Event {
        if let e = takeOrPark(nil) { return e }
        return await withCheckedContinuation { (c: CheckedContinuation<Event, Never>) in
            if let e = takeOrPark(c) { c.resume(returning: e) }
        }
    }

    /// Takes the oldest event, or (when `c` is given and nothing is queued) parks `c` for the
    /// reader thread to resume.
    private func takeOrPark(_ c: CheckedContinuation<Event, Never>?) -> Event? {
        state.lock()
        defer { state.unlock() }
        if let terminal { return .response(terminal) }
        if head < events.count {
            let e = events[head]
            head += 1
            if case .response(let r) = e { terminal = r }
            if head == events.count { events.removeAll(keepingCapacity: true); head = 0 }
            if case .data(let bytes) = e { bufferedBytes -= bytes.count }
            state.broadcast()
            return e
        }
        if let c {
            waiter = c
            state.broadcast()
        }
        return nil
    }

    /// The terminal response, skipping any data.
    func response() async throws -> [UInt8] {
        while true {
            if case .response(let r) = await next() { return try r.get() }
        }
    }

    /// The caller stopped listening: drop everything still to come.
    func abandon() {
        state.lock()
        abandoned = true
        events = []
        head = 0
        bufferedBytes = 0
        state.broadcast()
        state.unlock()
    }

    var isFinished: Bool {
        state.lock()
        defer { state.unlock() }
        return finished
    }
}
