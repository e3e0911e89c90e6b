import Foundation
import GAN
import TestSupport
import XCTest

/// `gan train --time-limit`: the duration format, and a session that stops at its deadline
/// with the final grid and checkpoint written.
final class TimeLimitTests: XCTestCase {
    func testParseDuration() {
        XCTAssertEqual(parseDuration("300"), 300)
        XCTAssertEqual(parseDuration("90.5"), 90.5)
        XCTAssertEqual(parseDuration("45s"), 45)
        XCTAssertEqual(parseDuration("5m"), 300)
        XCTAssertEqual(parseDuration("1.5h"), 5400)
        XCTAssertEqual(parseDuration("1h30m"), 5400)
        XCTAssertEqual(parseDuration(" 2M "), 120)
        XCTAssertEqual(parseDuration("0"), 0)
        for bad in ["", "m", "5x", "-3", "5m3", "1m1m", "abc", "5 m"] { XCTAssertNil(parseDuration(bad), bad) }
    }

    func session(_ dir: String, steps: Int, deadline: Date?) throws -> (TrainingSession, GANTrainer) {
        var c = smallConfig(.dcgan, .bce)
        c.steps = steps
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
        let s = try TrainingSession(trainer: trainer, folder: RunFolder(path: dir), sampleEvery: 0, checkpointEvery: 0)
        s.deadline = deadline
        return (s, trainer)
    }

    func testSessionStopsAtItsDeadlineWithFinalCheckpointAndGrid() throws {
        let root = try makeTempDir(self)
        // A deadline already past: one step, then the final grid and checkpoint at step 1.
        let (s1, t1) = try session(root + "/past", steps: 50, deadline: Date())
        try s1.run { _ in }
        XCTAssertEqual(t1.step, 1)
        XCTAssertTrue(s1.stoppedByDeadline)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/past/checkpoints"), ["step_00000001.rgan"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/past/samples"), ["step_00000001.png"])
        // A deadline in 1.5 s: stops between the first step and the 10,000th, with its last step saved.
        let start = Date()
        let (s2, t2) = try session(root + "/soon", steps: 10_000, deadline: start.addingTimeInterval(1.5))
        try s2.run { _ in }
        XCTAssertTrue(s2.stoppedByDeadline)
        XCTAssertGreaterThan(t2.step, 1)
        XCTAssertLessThan(t2.step, 10_000)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 1.5)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/soon/checkpoints"),
                       [String(format: "step_%08d.rgan", t2.step)])
        // A far deadline changes nothing.
        let (s3, t3) = try session(root + "/far", steps: 3, deadline: Date().addingTimeInterval(3600))
        try s3.run { _ in }
        XCTAssertEqual(t3.step, 3)
        XCTAssertFalse(s3.stoppedByDeadline)
    }
}
