import ArgumentParser
import Foundation
import GAN
import TestSupport
import TrainingCLI
import XCTest

/// `--resume CKPT` with training flags that differ from the checkpoint's config warns, as
/// `--resume auto` does (the run's config is used); a start with nothing to train says so instead
/// of "done" and writes nothing.
final class ResumeFlagTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws { work = try makeTempDir(self) }

    func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: work + "/" + dir)) ?? []).sorted() }

    let tiny = ["--model", "mlp", "--ngf", "8", "--ndf", "8", "--latent-dim", "8", "--batch", "4", "--data", mnistFolder,
                "--sample-every", "0", "--checkpoint-every", "0", "--json"]

    func testResumeFromAPathWarnsAboutFlagsThatDiffer() throws {
        try gan(["train", "--name", "r", "--steps", "2"] + tiny, cwd: work)
        let ckpt = "runs/r/checkpoints/step_00000002.rgan"
        // Only --steps: no warning.
        let plain = try gan(["train", "--resume", ckpt, "--steps", "3", "--json"], cwd: work)
        XCTAssertFalse(plain.stderr.contains("warning"), plain.stderr)
        // Flags that ask for another model, learning rates and batch: each named, the run's config used.
        let r = try gan(["train", "--resume", "runs/r/checkpoints/step_00000003.rgan", "--steps", "4", "--json", "--model", "dcgan",
                         "--lr-g", "1e-3", "--lr-d", "3e-3", "--batch", "8"], cwd: work)
        XCTAssertTrue(r.stderr.contains("--resume runs/r/checkpoints/step_00000003.rgan: the training flags differ from the config of the run"), r.stderr)
        for field in ["model: mlp in the run, dcgan from the flags", "lrG: 0.0002 in the run, 0.001 from the flags",
                      "lrD: 0.0002 in the run, 0.003 from the flags", "batchSize: 4 in the run, 8 from the flags"] {
            XCTAssertTrue(r.stderr.contains(field), field + "\n" + r.stderr)
        }
        XCTAssertTrue(r.stderr.contains("the run's config is used"), r.stderr)
        let resumed = try Checkpoint.read(path: work + "/runs/r/checkpoints/step_00000004.rgan")
        XCTAssertEqual(resumed.config.model, .mlp)
        XCTAssertEqual(resumed.config.batchSize, 4)
        // The same check as --resume auto's, in the code both executables share (RunStart).
        let training = try TrainingFlags.parse(["--batch", "16", "--lr", "1e-3"])
        let run = try RunFlags.parse(["--resume", work + "/" + ckpt])
        let start = try RunStart(training: training, run: run)
        XCTAssertEqual(start.warnings.count, 1, "\(start.warnings)")
        XCTAssertTrue(start.warnings.first?.contains("batchSize: 4 in the run, 16 from the flags, lrD: 0.0002 in the run, 0.001 from the flags, "
                                                      + "lrG: 0.0002 in the run, 0.001 from the flags") == true, "\(start.warnings)")
    }

    /// A relative `--data` is stored resolved (config.json, every checkpoint): a run resumed from
    /// another folder (a coordinator restarted by a launcher elsewhere) reads the same data. It
    /// used to keep `data`, which the second folder does not have.
    func testRelativeDataPathIsStoredAbsolute() throws {
        let here = FileManager.default.currentDirectoryPath
        let w = URL(fileURLWithPath: work).resolvingSymlinksInPath().path   // as getcwd names it
        defer { FileManager.default.changeCurrentDirectoryPath(here) }
        try FileManager.default.createDirectory(atPath: work + "/a/mine", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: work + "/a/mine/mnist", withDestinationPath: mnistFolder)
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(work + "/a"))
        // Where flags become the config (gan train and gan-coordinator both).
        let flags = try TrainingFlags.parse(["--data", "mine/./mnist", "--batch", "4"])
        XCTAssertEqual(try flags.config().dataDir, w + "/a/mine/mnist")
        XCTAssertEqual(try TrainingFlags.parse(["--data", "/abs/x"]).config().dataDir, "/abs/x")
        XCTAssertNil(try TrainingFlags.parse([]).config().dataDir)
        FileManager.default.changeCurrentDirectoryPath(here)

        let rel = tiny.map { $0 == mnistFolder ? "mine/mnist" : $0 }
        try gan(["train", "--runs-dir", work + "/runs", "--name", "rel", "--steps", "2"] + rel, cwd: work + "/a")
        let config = try JSONDecoder().decode(GANConfig.self, from: Data(contentsOf: URL(fileURLWithPath: work + "/runs/rel/config.json")))
        XCTAssertEqual(config.dataDir, w + "/a/mine/mnist")
        // Resumed from another folder, which has no mine/mnist of its own.
        try FileManager.default.createDirectory(atPath: work + "/b", withIntermediateDirectories: true)
        let r = try gan(["train", "--resume", work + "/runs/rel/checkpoints/step_00000002.rgan", "--steps", "3", "--json"], cwd: work + "/b")
        XCTAssertFalse(r.stderr.contains("warning"), r.stderr)
        XCTAssertEqual(try Checkpoint.read(path: work + "/runs/rel/checkpoints/step_00000003.rgan").config.dataDir, w + "/a/mine/mnist")
        // --resume auto from the other folder, as a launcher restarting a coordinator elsewhere
        // repeats its command: the run's stored data is read (the flag's, resolved there, is not
        // there; a warning names the difference, the run's config is used).
        let auto = try gan(["train", "--runs-dir", work + "/runs", "--name", "rel", "--resume", "auto", "--steps", "4"] + rel, cwd: work + "/b")
        XCTAssertTrue(auto.stderr.contains("dataDir: \(w)/a/mine/mnist in the run, \(w)/b/mine/mnist from the flags"), auto.stderr)
        XCTAssertEqual(try Checkpoint.read(path: work + "/runs/rel/checkpoints/step_00000004.rgan").step, 4)
    }

    func testNothingToTrainIsSaidPlainlyAndWritesNothing() throws {
        // --steps 0 on a fresh run.
        let zero = try gan(["train", "--name", "zero", "--steps", "0"] + tiny, cwd: work)
        XCTAssertFalse(zero.stderr.contains("done"), zero.stderr)
        XCTAssertTrue(zero.stderr.contains("nothing to train: --steps 0 asks for no training steps"), zero.stderr)
        XCTAssertEqual(files("runs"), [], "a run folder was made")
        // A checkpoint at the end of its run, resumed without --steps, with the same, with fewer.
        try gan(["train", "--name", "end", "--steps", "2"] + tiny, cwd: work)
        let ckpt = "runs/end/checkpoints/step_00000002.rgan"
        let before = files("runs/end")
        for (extra, why) in [([String](), "the run's own length (2 steps) goes no further"), (["--steps", "2"], "--steps 2 goes no further"),
                             (["--steps", "1"], "--steps 1 goes no further")] {
            let r = try gan(["train", "--resume", ckpt, "--json"] + extra, cwd: work)
            XCTAssertFalse(r.stderr.contains("done"), r.stderr)
            XCTAssertTrue(r.stderr.contains("nothing to train: \(ckpt) is at step 2, and \(why); give --steps above 2 to train on"), r.stderr)
            XCTAssertEqual(files("runs/end"), before, "something was written")
        }
        // The coordinator: the workers come and go, but no "done" either.
        let c = try runProcess(builtExecutable("gan-coordinator"), ["--workers", "1", "--spawn", "--port", "0", "--resume", ckpt],
                               cwd: work, timeout: 120)
        XCTAssertEqual(c.status, 0, c.both)
        XCTAssertFalse(c.stderr.contains("done:"), c.stderr)
        XCTAssertTrue(c.stderr.contains("nothing to train: \(ckpt) is at step 2"), c.stderr)
    }
}
