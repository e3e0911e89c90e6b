import Foundation
import GAN
import TestSupport
import TrainingCLI
import XCTest

/// Ctrl-C never loses work: SIGINT or SIGTERM during `gan train` ends the run after the step in
/// progress with a checkpoint and a grid of that step, prints the command that resumes it and
/// exits 130 / 143; that command continues from the saved step, to the same weights as a run that
/// was never interrupted. A second signal stops at once.
final class InterruptTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws { work = try makeTempDir(self) }

    func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: work + "/" + dir)) ?? []).sorted() }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: work + "/" + path) }

    /// The step of `step_XXXXXXXX.rgan`.
    func step(_ name: String) -> Int? { Int(name.dropFirst(5).prefix(8)) }

    /// The line `to resume: COMMAND` of a log, as the command.
    func resumeCommand(_ log: String) -> String? {
        log.split(separator: "\n").last { $0.hasPrefix("to resume: ") }.map { String($0.dropFirst("to resume: ".count)) }
    }

    let tiny = ["--model", "dcgan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch", "8", "--seed", "3",
                "--data", mnistFolder, "--sample-every", "5", "--checkpoint-every", "1000", "--json"]

    func testInterruptedTrainingSavesResumesWithThePrintedCommandAndEndsAsAnUninterruptedRun() throws {
        // 2000 steps with a checkpoint every 1000: without the interrupt handling nothing is kept.
        let first = try LoggedProcess(ganBinary, ["train", "--steps", "2000", "--name", "int"] + tiny, cwd: work, log: work + "/first.log")
        defer { first.stop() }
        XCTAssertTrue(first.wait { self.exists("runs/int/samples/step_00000005.png") }, "no grid at step 5: " + first.text)
        kill(first.pid, SIGINT)
        XCTAssertEqual(first.exitStatus(), 130, first.text)
        let log1 = first.text
        XCTAssertTrue(log1.contains("gan train: interrupted (SIGINT): finishing the current step"), log1)
        let saved = files("runs/int/checkpoints")
        XCTAssertEqual(saved.count, 1, "one final checkpoint: \(saved)\n" + log1)
        guard let name = saved.first, let s = step(name) else { return XCTFail("no checkpoint: " + log1) }
        XCTAssertGreaterThanOrEqual(s, 5)
        XCTAssertLessThan(s, 2000)
        XCTAssertEqual(try Checkpoint.read(path: work + "/runs/int/checkpoints/" + name).step, s)
        XCTAssertTrue(exists("runs/int/samples/" + String(format: "step_%08d.png", s)), "no grid of the last step: \(files("runs/int/samples"))")
        XCTAssertTrue(log1.contains("SIGINT: stopped at step \(s) of 2000"), log1)
        // Ended at step s by the request, with that checkpoint (not as a completed run).
        let ended = try RunFolder(path: work + "/runs/int").events().last
        XCTAssertEqual(ended?.event, .ended)
        XCTAssertEqual(ended?.ending, .stopRequest)
        XCTAssertEqual(ended?.step, s)
        XCTAssertEqual(ended?.checkpoint, "runs/int/checkpoints/" + name)
        guard let command = resumeCommand(log1) else { return XCTFail("no resume command printed: " + log1) }
        XCTAssertTrue(command.hasPrefix(ganBinary + " train "), command)
        XCTAssertTrue(command.hasSuffix("--runs-dir runs --name int --resume auto"), command)
        XCTAssertTrue(command.contains("--steps 2000"), command)

        // The printed command, as a user pastes it into a shell: it continues from step s.
        let second = try LoggedProcess("/bin/sh", ["-c", "exec " + command], cwd: work, log: work + "/second.log")
        defer { second.stop() }
        let next = String(format: "runs/int/samples/step_%08d.png", (s / 5 + 1) * 5)
        XCTAssertTrue(second.wait { self.exists(next) }, "the resumed run wrote no grid after step \(s): " + second.text)
        kill(second.pid, SIGTERM)
        XCTAssertEqual(second.exitStatus(), 143, second.text)
        let log2 = second.text
        XCTAssertTrue(log2.contains("--resume auto: resuming runs/int from runs/int/checkpoints/\(name) at step \(s) of 2000"), log2)
        XCTAssertFalse(log2.contains("differ"), "the printed command's flags are the run's: " + log2)
        XCTAssertTrue(log2.contains("gan train: terminated (SIGTERM)"), log2)
        guard let last = files("runs/int/checkpoints").last, let t = step(last), t > s else {
            return XCTFail("no checkpoint after step \(s): \(files("runs/int/checkpoints"))\n" + log2)
        }
        let ev = try RunFolder(path: work + "/runs/int").events()
        XCTAssertEqual(ev.map(\.event), [.started, .ended, .started, .ended], "\(ev)")
        XCTAssertEqual(ev[2].step, s)
        XCTAssertEqual(ev[2].from, "runs/int/checkpoints/" + name)
        XCTAssertEqual(ev[3].ending, .stopRequest)
        XCTAssertEqual(ev[3].step, t)
        XCTAssertEqual(resumeCommand(log2), command, "the same command resumes it again")

        // Interrupted twice and resumed: the same weights as t steps without a break.
        try gan(["train", "--steps", "\(t)", "--name", "straight"] + tiny, cwd: work)
        let a = try Checkpoint.read(path: work + "/runs/int/checkpoints/" + last)
        let b = try Checkpoint.read(path: work + "/runs/straight/checkpoints/" + String(format: "step_%08d.rgan", t))
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
        for (x, y) in zip(a.tensors, b.tensors) { XCTAssertTrue(x.tensor.toArray() == y.tensor.toArray(), "\(x.name) differs") }
    }

    func testASecondInterruptStopsAtOnce() throws {
        // A step of many seconds (64x64 DCGAN, batch 64): the second Ctrl-C lands inside the first step.
        let p = try LoggedProcess(ganBinary, ["train", "--model", "dcgan", "--image-size", "64", "--batch", "64", "--steps", "2000",
                                              "--data", mnistFolder, "--name", "twice"], cwd: work, log: work + "/twice.log")
        defer { p.stop() }
        XCTAssertTrue(p.waitForText("run runs/twice:"), p.text)
        kill(p.pid, SIGINT)
        XCTAssertTrue(p.waitForText("press Ctrl-C again to stop at once"), p.text)
        kill(p.pid, SIGINT)
        XCTAssertEqual(p.exitStatus(), 130, p.text)
        XCTAssertTrue(p.text.contains("gan train: stopping at once (a second signal)"), p.text)
        XCTAssertFalse(p.text.contains("to resume:"), "it waited for the step: " + p.text)
        XCTAssertEqual(files("runs/twice/checkpoints"), [], "nothing is half-written")
    }

    /// A SIGINT the process was started ignoring (a background job of a script, `nohup`) stays
    /// ignored: the script handles the terminal's Ctrl-C. SIGTERM then is the first signal.
    func testAnIgnoredSIGINTStaysIgnored() throws {
        let p = try LoggedProcess("/bin/sh", ["-c", "trap '' INT; exec \"$0\" \"$@\"", ganBinary, "train", "--steps", "2000", "--name", "bg"] + tiny,
                                  cwd: work, log: work + "/bg.log")
        defer { p.stop() }
        XCTAssertTrue(p.wait { FileManager.default.fileExists(atPath: self.work + "/runs/bg/samples/step_00000005.png") }, p.text)
        kill(p.pid, SIGINT)
        kill(p.pid, SIGTERM)
        XCTAssertEqual(p.exitStatus(), 143, p.text)
        XCTAssertFalse(p.text.contains("interrupted (SIGINT)"), p.text)
        XCTAssertTrue(p.text.contains("gan train: terminated (SIGTERM)") && p.text.contains("to resume:"), p.text)
        XCTAssertEqual(files("runs/bg/checkpoints").count, 1, p.text)
    }

    func testTheResumeCommandNamesTheRunFolderAndQuotesForTheShell() {
        let args = ["/opt/bin/gan", "train", "--name", "old", "--runs-dir=elsewhere", "--resume", "runs/x/checkpoints/step_1.rgan",
                    "--steps", "10", "--data", "my data", "--label-smoothing", "0.9", "--logdir", "it's"]
        XCTAssertEqual(RunFlags.resumeCommand(runPath: "/w/runs/my run", arguments: args),
                       "/opt/bin/gan train --steps 10 --data 'my data' --label-smoothing 0.9 --logdir 'it'\\''s' "
                       + "--runs-dir /w/runs --name 'my run' --resume auto")
        XCTAssertEqual(RunFlags.resumeCommand(runPath: "runs/a", arguments: ["gan", "train", "--resume=auto", "--name=a"]),
                       "gan train --runs-dir runs --name a --resume auto")
        XCTAssertEqual(RunFlags.resumeCommand(runPath: "solo/", arguments: ["gan", "train"]), "gan train --runs-dir . --name solo --resume auto")
        XCTAssertEqual(RunFlags.resumeCommand(runPath: "/top", arguments: ["gan", "train"]), "gan train --runs-dir / --name top --resume auto")
    }
}
