import Foundation
import GAN
import Logging
import TestSupport
import XCTest
@testable import Cluster

/// `--resume auto`: the run folder `<runs-dir>/<name>` resumed from its newest checkpoint that
/// reads back whole, and what it refuses.
extension ClusterTests {
    /// Lists the run's checkpoints (file names, oldest first).
    func checkpointNames(_ run: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work + "/runs/\(run)/checkpoints")) ?? [])
            .filter { $0.hasSuffix(".rgan") }.sorted()
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
