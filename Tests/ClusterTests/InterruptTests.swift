import Foundation
import GAN
import TestSupport
import XCTest

/// Ctrl-C on a cluster run: SIGINT or SIGTERM to `gan-coordinator` ends the run after the steps
/// already sent, rank 0 writes the final checkpoint and grid, the command that resumes it is
/// printed and the coordinator exits 130 / 143; that command continues from the saved step.
extension ClusterTests {
    /// The line `to resume: COMMAND` of a log, as the command.
    func resumeCommand(_ log: String) -> String? {
        log.split(separator: "\n").last { $0.hasPrefix("to resume: ") }.map { String($0.dropFirst("to resume: ".count)) }
    }

    func testInterruptedSpawnedClusterSavesAndResumesWithThePrintedCommand() throws {
        // A checkpoint every 1000 steps: without the interrupt handling nothing would be kept.
        var train = trainArgs(steps: 2000, name: "int")
        train[train.firstIndex(of: "--checkpoint-every")! + 1] = "1000"
        let args = ["--workers", "2", "--spawn", "--port", "0", "--json"] + train
        let first = try launch("gan-coordinator", args, log: "coord1.log")
        waitForFile("runs/int/samples/step_00000005.png")
        XCTAssertTrue(first.isRunning, text("coord1.log"))
        // A terminal's Ctrl-C goes to its foreground process group: the spawned workers are not in
        // the coordinator's, so only the coordinator gets it and the workers finish the run.
        let pids = text("coord1.log").matches(of: #/spawned rank \d \(pid (\d+)\)/#).map { Int32($0.1)! }
        XCTAssertEqual(pids.count, 2, text("coord1.log"))
        for w in pids { XCTAssertNotEqual(getpgid(w), getpgid(first.processIdentifier), "a spawned worker shares the coordinator's process group") }
        kill(first.processIdentifier, SIGINT)
        XCTAssertEqual(wait(first, within: 120), 130, text("coord1.log"))
        let log1 = text("coord1.log")
        XCTAssertTrue(log1.contains("gan-coordinator: interrupted (SIGINT)"), log1)
        // The run and join lines read as sentences (they had "(N per worker))" and "joined the
        // coordinator at coordinator HOST:PORT").
        XCTAssertNotNil(log1.firstMatch(of: #/2 workers, batch \d+ \(\d+ per worker\), codec /#), log1)
        let rank0 = text("runs/int/logs/rank-0.log")
        XCTAssertNotNil(rank0.firstMatch(of: #/joined the coordinator 127\.0\.0\.1:\d+ as rank 0; waiting for the start/#), rank0)
        let saved = checkpointNames("int")
        XCTAssertEqual(saved.count, 1, "one final checkpoint: \(saved)\n" + log1)
        guard let name = saved.first, let s = Int(name.dropFirst(5).prefix(8)) else { return XCTFail("no checkpoint: " + log1) }
        XCTAssertGreaterThanOrEqual(s, 5)
        XCTAssertLessThan(s, 2000)
        XCTAssertEqual(try Checkpoint.read(path: work + "/runs/int/checkpoints/" + name).step, s)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/runs/int/samples/" + String(format: "step_%08d.png", s)))
        XCTAssertTrue(log1.contains("SIGINT: stopped at step \(s) of 2000; the last checkpoint is ")
                      && log1.contains("/runs/int/checkpoints/\(name)\n"), log1)
        // Every rank ended at that step: the run's events say so.
        XCTAssertEqual(events("int").map(\.event), [.formed, .ended])
        XCTAssertEqual(events("int").last?.ending, .stopRequest)
        XCTAssertEqual(events("int").last?.step, s)
        guard let command = resumeCommand(log1) else { return XCTFail("no resume command printed: " + log1) }
        XCTAssertTrue(command.hasPrefix(builtExecutable("gan-coordinator") + " --workers 2 --spawn"), command)
        XCTAssertTrue(command.hasSuffix("--name int --resume auto"), command)

        // The printed command continues from step s; interrupted again with SIGTERM.
        let second = try launch("/bin/sh", ["-c", "exec " + command], log: "coord2.log")
        let next = String(format: "runs/int/samples/step_%08d.png", (s / 5 + 1) * 5)
        waitForFile(next)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/" + next), text("coord2.log"))
        kill(second.processIdentifier, SIGTERM)
        XCTAssertEqual(wait(second, within: 120), 143, text("coord2.log"))
        let log2 = text("coord2.log")
        XCTAssertTrue(log2.contains("--resume auto: resuming"), log2)
        XCTAssertTrue(log2.contains("checkpoints/\(name) at step \(s) of 2000"), log2)
        guard let last = checkpointNames("int").last, let t = Int(last.dropFirst(5).prefix(8)), t > s else {
            return XCTFail("no checkpoint after step \(s): \(checkpointNames("int"))\n" + log2)
        }
        // The second coordinator formed the ring from that checkpoint and stopped at step t.
        let ev = events("int")
        XCTAssertEqual(ev.map(\.event), [.formed, .ended, .formed, .ended], "\(ev)")
        XCTAssertEqual(ev[2].step, s)
        XCTAssertTrue(ev[2].from?.hasSuffix("/checkpoints/" + name) ?? false, "\(ev[2])")
        XCTAssertEqual(ev[3].ending, .stopRequest)
        XCTAssertEqual(ev[3].step, t)
    }

    /// Ctrl-C on `cluster/local.sh` (SIGINT to its whole process group, as a terminal sends it):
    /// the coordinator and workers, its background jobs, ignore that SIGINT; the script asks the
    /// coordinator to stop, rank 0 writes the final checkpoint, and the script prints its own
    /// command that resumes the run and exits 130. (It used to kill every process at once.)
    func testCtrlCOnTheLocalClusterScriptKeepsTheFinalCheckpoint() throws {
        let bin = URL(fileURLWithPath: builtExecutable("gan-coordinator")).deletingLastPathComponent().path
        var train = trainArgs(steps: 2000, name: "local").filter { $0 != "--name" && $0 != "local" }
        train[train.firstIndex(of: "--checkpoint-every")! + 1] = "1000"   // only the final checkpoint
        let script = try launch("/bin/bash", [repoRoot + "/cluster/local.sh", "-n", "2", "--bin", bin, "--name", "local", "--port", "\(port())", "--"]
                                + train + ["--runs-dir", work + "/runs"], log: "local.log")
        waitForFile("runs/local/samples/step_00000005.png")
        XCTAssertTrue(script.isRunning, text("local.log"))
        // Foundation's Process made the script the leader of its own process group.
        XCTAssertEqual(getpgid(script.processIdentifier), script.processIdentifier)
        kill(-script.processIdentifier, SIGINT)
        XCTAssertEqual(wait(script, within: 120), 130, text("local.log"))
        let log = text("local.log")
        XCTAssertTrue(log.contains("local.sh: interrupted; the coordinator finishes the steps already sent"), log)
        XCTAssertTrue(log.contains("gan-coordinator: terminated (SIGTERM)"), log)
        let saved = checkpointNames("local")
        XCTAssertEqual(saved.count, 1, "\(saved)\n" + log)
        XCTAssertTrue(log.contains("local.sh: to resume: bash cluster/local.sh -n 2 --name local --restarts 3 --bin "), log)
        XCTAssertTrue(log.contains(" --resume auto"), log)
        XCTAssertEqual(events("local").last?.ending, .stopRequest, "\(events("local"))")
    }

    /// Interrupted while it waits for workers: nothing to save; it says so and exits at once.
    func testCoordinatorInterruptedWhileWaitingForWorkers() throws {
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "0", "--token-file", "token"]
                               + trainArgs(steps: 100, name: "waiting"), log: "coord.log")
        let deadline = Date().addingTimeInterval(60)
        while !text("coord.log").contains("waiting for 2 worker(s)") && coord.isRunning && Date() < deadline { usleep(10_000) }
        kill(coord.processIdentifier, SIGTERM)
        XCTAssertEqual(wait(coord, within: 30), 143, text("coord.log"))
        let log = text("coord.log")
        XCTAssertTrue(log.contains("SIGTERM: asked to stop while waiting for workers (0 of 2 joined); no checkpoint was written"), log)
        XCTAssertNotNil(resumeCommand(log), log)
    }
}
