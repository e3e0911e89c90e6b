import Foundation
import GAN
import Logging
import TestSupport
import XCTest
@testable import Cluster

/// The coordinator is no single point of failure: killed with SIGKILL mid-run, it is started
/// again with `--resume auto` on the same run folder and port, the workers (the same processes)
/// rejoin, and the run ends exactly where an uninterrupted one does. A worker whose coordinator
/// never comes back gives up after `--rejoin-timeout`, saying so. And `--resume auto` itself:
/// the run folder `<runs-dir>/<name>` resumed from its newest checkpoint that reads back whole,
/// and what it refuses.
extension ClusterTests {
    /// Lists the run's checkpoints (file names, oldest first).
    func checkpointNames(_ run: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work + "/runs/\(run)/checkpoints")) ?? [])
            .filter { $0.hasSuffix(".rgan") }.sorted()
    }

    func testKilledCoordinatorIsRestartedWithResumeAutoAndTheRunEndsBitIdentical() throws {
        let steps = 60
        let final = String(format: "step_%08d.rgan", steps)
        let p = port()
        // The same command both times, as a supervisor restarts it.
        let coordArgs = ["--workers", "2", "--port", "\(p)", "--token-file", "token", "--resume", "auto"] + trainArgs(steps: steps, name: "restart")
        let first = try launch("gan-coordinator", coordArgs, log: "coord1.log")
        let ws = try workers(2, port: p)   // the default --rejoin-timeout
        waitForFile("runs/restart/checkpoints/step_00000005.rgan")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let killedAt = Date()
        let before = checkpointNames("restart")
        // A first start with --resume auto starts fresh.
        XCTAssertEqual(events("restart").first?.event, .formed)
        XCTAssertEqual(events("restart").first?.step, 0)
        XCTAssertNil(events("restart").first?.from)
        XCTAssertFalse(before.contains(final), "the coordinator was killed only after the run had ended: \(before)")
        for w in ws { XCTAssertTrue(w.isRunning, "a worker exited when the coordinator died: " + text("w0.log") + text("w1.log")) }

        let second = try launch("gan-coordinator", coordArgs, log: "coord2.log")
        XCTAssertEqual(wait(second, within: 180), 0, text("coord2.log") + text("w0.log") + text("w1.log"))
        for (r, w) in ws.enumerated() { XCTAssertEqual(wait(w, within: 30), 0, text("w\(r).log")) }
        let rejoined = Date().timeIntervalSince(killedAt)
        // It formed the ring again with both workers, from a checkpoint written before the end,
        // not from the start (the killed coordinator recorded no end), and completed.
        let ev = events("restart")
        XCTAssertEqual(ev.map(\.event), [.formed, .formed, .ended], "\(ev)")
        guard ev.count == 3, ev[1].from != nil else { return XCTFail("the restarted coordinator did not resume: \(ev)") }
        XCTAssertEqual(ev[1].workers, 2)
        XCTAssertEqual(ev[2].ending, .completed)
        XCTAssertEqual(ev[2].step, steps)
        let resumedStep = ev[1].step
        XCTAssertGreaterThanOrEqual(resumedStep, 5)
        XCTAssertLessThan(resumedStep, steps)
        for i in 0..<2 {
            let log = text("w\(i).log")
            // A SIGKILL reads as the peer closing or as a reset, depending on timing.
            let lost = "lost the coordinator: coordinator 127.0.0.1:\(p): "
            XCTAssertTrue(log.contains(lost + "connection closed") || log.contains(lost + "read failed: Connection reset by peer"), log)
        }

        // The same run uninterrupted: the final checkpoints are the same bytes.
        let q = port()
        let straight = try launch("gan-coordinator", ["--workers", "2", "--port", "\(q)", "--token-file", "token"]
                                  + trainArgs(steps: steps, name: "straight"), log: "straight.log")
        let ws2 = try workers(2, port: q, prefix: "s")
        XCTAssertEqual(wait(straight, within: 180), 0, text("straight.log"))
        for w in ws2 { XCTAssertEqual(wait(w, within: 30), 0) }
        let a = try checkpointTensors("runs/straight/checkpoints/" + final)
        let b = try checkpointTensors("runs/restart/checkpoints/" + final)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (k, v) in a { XCTAssertTrue(v == b[k], "the restarted run differs in \(k)") }
        let fa = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/straight/checkpoints/" + final))
        let fb = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/restart/checkpoints/" + final))
        XCTAssertTrue(fa == fb, "the final checkpoint files differ (\(fa.count) and \(fb.count) bytes)")
        print("coordinator restart: killed with \(before) on disk, resumed at step \(resumedStep), run ended \(String(format: "%.1f", rejoined)) s after the kill")
    }

    /// A worker whose coordinator never comes back retries with backoff, then exits 1 within
    /// --rejoin-timeout (plus one attempt), naming the coordinator's address and the wait.
    func testWorkerGivesUpWhenTheCoordinatorNeverComesBack() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token"]
                               + trainArgs(steps: 2000, name: "orphans"), log: "coord.log")
        let ws = try (0..<2).map { r in
            try launch("gan-worker", ["--rank", "\(r)", "--coordinator", "127.0.0.1:\(p)", "--token-file", "token", "--ring-host", "127.0.0.1",
                                      "--rejoin-timeout", "4"], log: "w\(r).log")
        }
        waitForFile("runs/orphans/checkpoints/step_00000005.rgan")
        kill(coord.processIdentifier, SIGKILL)
        let t0 = Date()
        for (r, w) in ws.enumerated() {
            XCTAssertEqual(wait(w, within: 4 + 20), 1, text("w\(r).log"))
        }
        let took = Date().timeIntervalSince(t0)
        XCTAssertGreaterThanOrEqual(took, 4, "gave up before --rejoin-timeout")
        XCTAssertLessThan(took, 4 + 10, "took \(took) s to give up")
        for r in 0..<2 {
            let log = text("w\(r).log")
            // The loss reads as a close or a reset, depending on when the kill lands.
            let lost = "coordinator 127.0.0.1:\(p): did not come back within 4 s (--rejoin-timeout) after it was lost ("
            XCTAssertTrue(log.contains(lost + "connection closed by the peer)") || log.contains(lost + "read failed: Connection reset by peer)"), log)
            XCTAssertTrue(log.contains("rejoin attempt 2"), "retries are logged: " + log)
        }
        // What rank 0 wrote before is intact.
        for f in checkpointNames("orphans") { XCTAssertNoThrow(try Checkpoint.read(path: work + "/runs/orphans/checkpoints/" + f)) }
    }

    /// `--resume auto` on a run folder it cannot go on with: a clear error and exit 2 (a restart
    /// would fail the same way), before anything listens. And `gan train --resume auto` resumes
    /// the run's config whatever the flags say, naming the differences.
    func testResumeAutoRefusesWhatItCannotResume() throws {
        // A 2-step run to resume (one process: the same checkpoint format).
        try gan(["train"] + trainArgs(steps: 2, name: "base") + ["--json"], cwd: work)
        let base = ["--workers", "1", "--port", "\(port())", "--token-file", "token", "--resume", "auto"]
        func refused(_ args: [String], _ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let c = try launch("gan-coordinator", args, log: "refused.log")
            XCTAssertEqual(wait(c, within: 30, file: file, line: line), 2, text("refused.log"), file: file, line: line)
            XCTAssertTrue(text("refused.log").contains(needle), text("refused.log"), file: file, line: line)
        }
        // No --name: nothing to resume.
        try refused(base + trainArgs(steps: 2, name: "base").filter { $0 != "--name" && $0 != "base" }, "--resume auto needs --name")
        // Checkpoints none of which reads back whole.
        try FileManager.default.createDirectory(atPath: work + "/runs/broken/checkpoints", withIntermediateDirectories: true)
        let good = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/base/checkpoints/step_00000002.rgan"))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: work + "/runs/broken/checkpoints/step_00000002.rgan"))
        try refused(base + trainArgs(steps: 2, name: "broken"), "none of the 1 checkpoint(s)")
        // gan train --resume auto resumes the run from its step 2 to 4 (--steps extends it), in its
        // folder, with its own config as --resume PATH does: flags that differ are named.
        var other = trainArgs(steps: 4, name: "base")
        other[other.firstIndex(of: "--ngf")! + 1] = "16"
        let r = try gan(["train"] + other + ["--resume", "auto", "--json"], cwd: work)
        XCTAssertTrue(r.stderr.contains("resuming runs/base from runs/base/checkpoints/step_00000002.rgan at step 2 of 4"), r.stderr)
        XCTAssertTrue(r.stderr.contains("ngf: 8 in the run, 16 from the flags"), r.stderr)
        let resumed = try Checkpoint.read(path: work + "/runs/base/checkpoints/step_00000004.rgan")
        XCTAssertEqual(resumed.step, 4)
        XCTAssertEqual(resumed.config.ngf, 8)
    }

    /// `--resume auto` looks again once every worker has rejoined: a checkpoint of the run that
    /// appeared meanwhile (rank 0 finishing one after the old coordinator died) is taken; the same
    /// file under another spelling of its path is not news; one of another config is passed over.
    func testResumeAutoTakesACheckpointWrittenWhileTheWorkersRejoined() throws {
        try gan(["train"] + trainArgs(steps: 2, name: "late") + ["--json"], cwd: work)
        let dir = work + "/runs/late/checkpoints"
        let first = try Checkpoint.read(path: dir + "/step_00000002.rgan")
        var o = CoordinatorOptions(workers: 1, token: "cluster-test-token-0123456789", config: first.config, runDir: work + "/runs/late")
        o.port = 0
        let c = try Coordinator(options: o, logger: Logger(label: "test"))
        XCTAssertEqual(c.newerCheckpoint(than: dir + "/step_00000002.rgan"), dir + "/step_00000002.rgan")
        XCTAssertEqual(c.newerCheckpoint(than: dir + "/../checkpoints/./step_00000002.rgan"), dir + "/../checkpoints/./step_00000002.rgan")
        XCTAssertEqual(c.newerCheckpoint(than: nil), dir + "/step_00000002.rgan")
        try FileManager.default.copyItem(atPath: dir + "/step_00000002.rgan", toPath: dir + "/step_00000004.rgan")
        XCTAssertEqual(c.newerCheckpoint(than: dir + "/step_00000002.rgan"), dir + "/step_00000004.rgan")
        // Another run's checkpoint (ngf 16) in the folder: not resumed.
        try gan(["train"] + trainArgs(steps: 2, name: "other").map { $0 == "8" ? "16" : $0 } + ["--json"], cwd: work)
        try FileManager.default.copyItem(atPath: work + "/runs/other/checkpoints/step_00000002.rgan", toPath: dir + "/step_00000006.rgan")
        XCTAssertEqual(c.newerCheckpoint(than: dir + "/step_00000004.rgan"), dir + "/step_00000004.rgan")
    }
}
