import Foundation
import GAN
import TestSupport
import XCTest

/// Exact mode end to end, over separate processes: the checkpoint files themselves (`cmp`).
extension ClusterTests {
    func exactArgs(steps: Int, name: String) -> [String] {
        ["--model", "dcgan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch", "16", "--micro-batches", "4",
         "--steps", "\(steps)", "--data", mnistFolder, "--runs-dir", "runs", "--name", name, "--sample-every", "5",
         "--checkpoint-every", "5", "--keep", "100", "--seed", "11"]
    }

    func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: work + "/" + path) }

    /// `gan train --exact` with 2 engine threads, and `gan-coordinator --spawn` with 2 and 4
    /// workers of one thread each, write byte-identical checkpoints at every step they save; a
    /// run whose coordinator and workers are all killed (SIGKILL) after a checkpoint, restarted
    /// with `--resume auto`, ends byte-identical too; and so does a run of 3 workers that loses
    /// one and re-forms as 2 (`--min-workers`), recomputing the steps since its last checkpoint.
    func testExactModeCheckpointsAreByteIdenticalAcrossWorkerCounts() throws {
        let steps = 20
        let single = try runProcess(builtExecutable("gan"), ["train", "--threads", "2"] + exactArgs(steps: steps, name: "single"), cwd: work)
        XCTAssertEqual(single.status, 0, single.stderr)
        let reference = (1...(steps / 5)).map { String(format: "checkpoints/step_%08d.rgan", $0 * 5) }
        for r in reference { XCTAssertNotNil(bytes("runs/single/" + r), r) }

        for n in [2, 4] {
            let coord = try launch("gan-coordinator", ["--workers", "\(n)", "--spawn", "--port", "\(port())"] + exactArgs(steps: steps, name: "w\(n)"),
                                   log: "coord\(n).log")
            XCTAssertEqual(wait(coord, within: 180), 0, text("coord\(n).log"))
            for r in reference {
                XCTAssertEqual(bytes("runs/w\(n)/" + r), bytes("runs/single/" + r), "\(n) workers: \(r) differs from one process")
            }
        }

        // Everything killed after the step-10 checkpoint, then --resume auto with new processes.
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token"] + exactArgs(steps: steps, name: "killed"),
                               log: "killed.log")
        let ws = try workers(2, port: p, prefix: "k")
        waitForFile("runs/killed/checkpoints/step_00000010.rgan")
        for proc in [coord] + ws { kill(proc.processIdentifier, SIGKILL) }
        for proc in [coord] + ws { proc.waitUntilExit() }
        let p2 = port()
        let again = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p2)", "--token-file", "token", "--resume", "auto"]
                               + exactArgs(steps: steps, name: "killed"), log: "again.log")
        _ = try workers(2, port: p2, prefix: "a")
        XCTAssertEqual(wait(again, within: 180), 0, text("again.log"))
        XCTAssertEqual(bytes("runs/killed/" + reference.last!), bytes("runs/single/" + reference.last!), "killed and resumed: differs\n" + text("again.log"))

        // 3 workers, one killed after the step-5 checkpoint: the survivors re-form as 2.
        let p3 = port()
        let reform = try launch("gan-coordinator", ["--workers", "3", "--min-workers", "2", "--port", "\(p3)", "--token-file", "token",
                                                    "--dead-after", "5"] + exactArgs(steps: steps, name: "reform"), log: "reform.log")
        let rs = try workers(3, port: p3, prefix: "f")
        waitForFile("runs/reform/checkpoints/step_00000005.rgan")
        kill(rs[2].processIdentifier, SIGKILL)
        XCTAssertEqual(wait(reform, within: 180), 0, text("reform.log"))
        XCTAssertEqual(events("reform").map(\.event), [.formed, .lost, .formed, .ended], "re-formed: \(events("reform"))")
        XCTAssertEqual(bytes("runs/reform/" + reference.last!), bytes("runs/single/" + reference.last!), "re-formed 3 -> 2: differs")
    }
}
