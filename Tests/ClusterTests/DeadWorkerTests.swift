import Foundation
import GAN
import TestSupport
import XCTest

/// A worker the coordinator declared dead that connects again while the run goes on is refused
/// at once, naming why; it used to wait in the admission queue until the run ended.
extension ClusterTests {
    func testWorkerDeclaredDeadIsRefusedAtOnceWhenItComesBack() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "3", "--min-workers", "2", "--port", "\(p)", "--token-file", "token",
                                                   "--dead-after", "3"] + trainArgs(steps: 2000, name: "dead"), log: "coord.log")
        let ws = try workers(3, port: p)
        waitForFile("runs/dead/checkpoints/step_00000005.rgan")
        // Rank 2 frozen: declared dead after 3 s; the ring re-forms with ranks 0 and 1.
        kill(ws[2].processIdentifier, SIGSTOP)
        let deadline = Date().addingTimeInterval(60)
        let reformed = { self.events("dead").contains { $0.event == .formed && $0.workers == 2 } }
        while !reformed() && coord.isRunning && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(reformed(), "the ring re-formed with 2 workers: \(events("dead"))")
        // Training goes on without it; then the same process is resumed: it sees its connection
        // gone and rejoins the coordinator's address, which refuses it at once.
        usleep(500_000)
        let t0 = Date()
        kill(ws[2].processIdentifier, SIGCONT)
        XCTAssertEqual(wait(ws[2], within: 30), 3, text("w2.log"))
        let took = Date().timeIntervalSince(t0)
        XCTAssertLessThan(took, 10, "refused within moments of coming back, not at the end of the run")
        let w2 = text("w2.log")
        XCTAssertTrue(w2.contains("refused this worker: rank 2 (pid \(ws[2].processIdentifier)) was declared dead at step "), w2)
        XCTAssertTrue(w2.contains("this run does not readmit that process: the ring re-formed without it"), w2)
        XCTAssertTrue(coord.isRunning, "the run goes on: " + text("coord.log"))
        XCTAssertTrue(text("coord.log").contains("refused 127.0.0.1:"), text("coord.log"))
        // End the run (an interrupt: the survivors finish their steps and exit 0).
        kill(coord.processIdentifier, SIGINT)
        XCTAssertEqual(wait(coord, within: 120), 130, text("coord.log"))
        for w in ws[0..<2] { XCTAssertEqual(wait(w, within: 30), 0) }
        XCTAssertEqual(events("dead").map(\.event), [.formed, .lost, .formed, .ended])
        XCTAssertEqual(events("dead").last?.ending, .stopRequest)
    }
}
