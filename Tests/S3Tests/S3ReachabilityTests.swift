import Foundation
import S3
import XCTest

/// The outage state machine alone: when an outage begins and ends, one probe at a time, the
/// tolerance, and evidence from attempts older than the state.
final class S3ReachabilityTests: XCTestCase {
    /// The log lines an S3Reachability wrote.
    typealias Events = Tally<String>

    func reachability(tolerance: Double, events: Events) -> S3Reachability {
        S3Reachability(endpoint: "http://s3.test", tolerance: tolerance, probeBackoffBase: 0.02, probeBackoffCap: 0.05,
                       onEvent: { events.add("\($0)") })
    }

    func testReachableCallsPassWithoutWaiting() throws {
        let events = Events()
        let r = reachability(tolerance: 5, events: events)
        let ticket = try r.admit()
        XCTAssertFalse(ticket.probe)
        XCTAssertNil(ticket.waitingSince)
        r.settle(ticket, .answered)
        XCTAssertFalse(r.isUnreachable)
        XCTAssertTrue(r.hasAnswered)
        XCTAssertEqual(events.values, [])
    }

    func testOneProbeAtATimeAndAnAnswerReleasesEveryone() throws {
        let events = Events()
        let r = reachability(tolerance: 30, events: events)
        r.settle(try r.admit(), .unreachable("libcurl error 7: refused"))
        XCTAssertTrue(r.isUnreachable)
        let probe = try r.admit()
        XCTAssertTrue(probe.probe, "the first caller after the backoff probes")
        let released = DispatchGroup()
        let admitted = Tally<Bool>()  // probe or not
        for _ in 0..<10 {
            released.enter()
            Thread {
                let t = try? r.admit()
                if let t { admitted.add(t.probe) }
                if let t { r.settle(t, .answered); r.finished(t) }
                released.leave()
            }.start()
        }
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(admitted.values.count, 0, "nobody passes while the probe is out")
        XCTAssertEqual(r.snapshot.callsWaiting, 10)
        r.settle(probe, .answered)
        r.finished(probe)
        XCTAssertEqual(released.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(admitted.values.filter { $0 }.count, 0, "the answer ended the outage: nobody else had to probe")
        XCTAssertEqual(admitted.values.count, 10)
        let s = r.snapshot
        XCTAssertNil(s.unreachableSince)
        XCTAssertEqual(s.outages, 1)
        XCTAssertEqual(s.callsWaited, 11)
        XCTAssertGreaterThanOrEqual(s.longestWaitSeconds, 0.3)
        XCTAssertEqual(s.callsFailed, 0)
        XCTAssertEqual(events.values.count, 2, "one line when it began, one when it ended: \(events.values)")
        XCTAssertTrue(events.values[0].contains("is unreachable (libcurl error 7: refused)"), events.values[0])
        XCTAssertTrue(events.values[1].contains("reachable again"), events.values[1])
    }

    func testAFailedProbeHandsTheNextProbeToAWaiterAfterABackoff() throws {
        let events = Events()
        let r = reachability(tolerance: 30, events: events)
        r.settle(try r.admit(), .unreachable("refused"))
        let first = try r.admit()
        XCTAssertTrue(first.probe)
        let started = Date()
        r.settle(first, .unreachable("refused again"))
        let second = try r.admit()
        XCTAssertTrue(second.probe)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.009, "probes are spaced by the backoff")
        XCTAssertEqual(r.snapshot.cause, "refused again")
        XCTAssertEqual(r.snapshot.outages, 1, "a failed probe does not begin another outage")
        r.settle(second, .answered)
        XCTAssertFalse(r.isUnreachable)
    }

    func testAttemptsOlderThanTheStateAreNotEvidence() throws {
        let events = Events()
        let r = reachability(tolerance: 30, events: events)
        let sentBefore = try r.admit()  // in flight when the outage begins
        let other = try r.admit()
        r.settle(other, .unreachable("refused"))
        r.settle(sentBefore, .answered)
        XCTAssertTrue(r.isUnreachable, "a late answer to a request sent before the outage does not end it")
        let probe = try r.admit()
        r.settle(probe, .answered)
        XCTAssertFalse(r.isUnreachable)
        r.settle(other, .unreachable("late reset"))
        XCTAssertFalse(r.isUnreachable, "a late failure of a request sent before the recovery does not begin an outage")
        XCTAssertEqual(r.snapshot.outages, 1)
    }

    func testAnOutageLongerThanTheToleranceFailsWaitersWithHowLongAndWhy() throws {
        let events = Events()
        let r = reachability(tolerance: 0.5, events: events)
        r.settle(try r.admit(), .unreachable("libcurl error 7: Failed to connect"))
        let probe = try r.admit()
        XCTAssertTrue(probe.probe)
        let started = Date()
        XCTAssertThrowsError(try r.admit()) { error in
            let text = "\(error)"
            XCTAssertTrue(error is S3Unreachable, text)
            XCTAssertTrue(text.contains("S3 at http://s3.test has been unreachable for"), text)
            XCTAssertTrue(text.contains("libcurl error 7: Failed to connect"), text)
            XCTAssertTrue(text.contains("--s3-outage-tolerance 0.5 s"), text)
        }
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 0.4)
        XCTAssertLessThan(waited, 2)
        // Past the tolerance, a caller that is not the probe fails at once.
        let again = Date()
        XCTAssertThrowsError(try r.admit())
        XCTAssertLessThan(Date().timeIntervalSince(again), 0.2)
        // The probe's failure frees the turn: the next caller probes rather than failing.
        r.settle(probe, .unreachable("still refused"))
        Thread.sleep(forTimeInterval: 0.06)
        let next = try r.admit()
        XCTAssertTrue(next.probe)
        r.settle(next, .answered)
        XCTAssertEqual(r.snapshot.callsFailed, 2)
        XCTAssertEqual(events.values.filter { $0.contains("now fail with UNAVAILABLE") }.count, 1, "logged once: \(events.values)")
    }

    func testToleranceZeroNeverWaits() throws {
        let events = Events()
        let r = reachability(tolerance: 0, events: events)
        r.settle(try r.admit(), .unreachable("refused"))
        XCTAssertFalse(r.isUnreachable)
        XCTAssertFalse(try r.admit().probe)
        XCTAssertEqual(events.values, [])
    }
}
