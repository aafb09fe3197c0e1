import JobStoreDaemon
import XCTest

/// Every transition of the daemon's state machine, the refused ones included.
final class DaemonLifecycleTests: XCTestCase {
    func testAStartThatSucceedsServesThenDrainsToStopped() throws {
        var life = DaemonLifecycle()
        XCTAssertEqual(life.state, .idle)
        try life.beginStart()
        XCTAssertEqual(life.state, .starting)
        try life.finishStart(succeeded: true)
        XCTAssertEqual(life.state, .serving)
        XCTAssertTrue(try life.beginDrain(), "the first drain is the one to drain")
        XCTAssertEqual(life.state, .draining)
        XCTAssertFalse(try life.beginDrain(), "a second drain (a signal twice) does nothing")
        try life.finishDrain()
        XCTAssertEqual(life.state, .stopped)
        XCTAssertFalse(try life.beginDrain(), "draining a stopped daemon does nothing")
    }

    func testAFailedStartStops() throws {
        var life = DaemonLifecycle()
        try life.beginStart()
        try life.finishStart(succeeded: false)
        XCTAssertEqual(life.state, .stopped)
        XCTAssertThrowsError(try life.beginStart(), "a stopped daemon is not started again")
    }

    func testAStartIsOnceOnly() throws {
        var life = DaemonLifecycle()
        try life.beginStart()
        XCTAssertThrowsError(try life.beginStart()) { error in
            XCTAssertEqual(error as? DaemonLifecycle.Refused, DaemonLifecycle.Refused(action: "start", state: .starting))
        }
        try life.finishStart(succeeded: true)
        XCTAssertThrowsError(try life.beginStart())
        XCTAssertThrowsError(try life.finishStart(succeeded: true), "finishing a start that is not in progress")
    }

    func testDrainingAnIdleDaemonStopsIt() throws {
        var life = DaemonLifecycle()
        XCTAssertFalse(try life.beginDrain())
        XCTAssertEqual(life.state, .stopped)
        XCTAssertThrowsError(try life.finishDrain(), "nothing was draining")
    }

    func testADaemonStillStartingRefusesToDrain() throws {
        var life = DaemonLifecycle()
        try life.beginStart()
        XCTAssertThrowsError(try life.beginDrain()) { error in
            XCTAssertEqual("\(error)", "cannot drain a daemon that is starting")
        }
        XCTAssertEqual(life.state, .starting)
    }
}
