import Foundation
import TestSupport
import XCTest

/// A worker started before its coordinator says what it waits for, at once and at every retry,
/// joins when the coordinator comes, and gives up after --connect-timeout naming that flag.
extension ClusterTests {
    func testWorkerWaitingForItsCoordinatorSaysSoAndItsTimeoutNamesTheFlag() throws {
        let p = port()
        // Nobody there: each retry is logged, and the end names --connect-timeout with its value.
        let alone = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(p)", "--token-file", "token",
                                              "--ring-host", "127.0.0.1", "--connect-timeout", "2.5"], log: "alone.log")
        XCTAssertEqual(wait(alone, within: 60), 1, text("alone.log"))
        let log = text("alone.log")
        guard let waiting = log.range(of: "waiting for the coordinator at 127.0.0.1:\(p) (up to 2.5 s, --connect-timeout)"),
              let first = log.range(of: "the coordinator at 127.0.0.1:\(p) is not there yet (attempt 1: ") else {
            return XCTFail("the wait is not said: " + log)
        }
        XCTAssertLessThan(waiting.lowerBound, first.lowerBound, "said only after the first attempt: " + log)
        XCTAssertTrue(log.contains("is not there yet (attempt 2: "), "retries are not logged: " + log)
        XCTAssertTrue(log.contains("left of --connect-timeout"), log)
        XCTAssertTrue(log.contains("coordinator 127.0.0.1:\(p): did not answer within 2.5 s (--connect-timeout); "), log)

        // The coordinator comes while the worker waits: it joins and the run ends.
        let q = port()
        let early = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(q)", "--token-file", "token",
                                              "--ring-host", "127.0.0.1"], log: "early.log")
        let deadline = Date().addingTimeInterval(60)
        while !text("early.log").contains("is not there yet (attempt 1: ") && early.isRunning && Date() < deadline { usleep(10_000) }
        let coord = try launch("gan-coordinator", ["--workers", "1", "--port", "\(q)", "--token-file", "token"] + trainArgs(steps: 2, name: "joined"),
                               log: "coord.log")
        XCTAssertEqual(wait(coord, within: 120), 0, text("coord.log"))
        XCTAssertEqual(wait(early, within: 30), 0, text("early.log"))
        XCTAssertTrue(text("early.log").contains("reached the coordinator at 127.0.0.1:\(q) after "), text("early.log"))
    }
}
