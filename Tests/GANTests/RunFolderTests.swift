import Foundation
import GAN
import Tensors
import TestSupport
import TrainingCLI
import XCTest

/// Runs never share a folder by accident: a made-up name that is taken moves on to `-2`, a
/// `--name` whose folder holds a run is refused naming `--resume auto`, every `gan import` gets a
/// folder of its own, and `--name` cannot leave `--runs-dir`.
final class RunFolderTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws { work = try makeTempDir(self) }

    func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: work + "/" + dir)) ?? []).sorted() }

    let tiny = ["--model", "mlp", "--ngf", "8", "--ndf", "8", "--latent-dim", "8", "--batch", "4", "--data", mnistFolder,
                "--sample-every", "0", "--checkpoint-every", "0", "--json"]

    /// Two claims of the same made-up name (two runs started in the same second) get two folders;
    /// an exact claim of a folder that holds anything is refused.
    func testClaimsOfTheSameFolderNeverShareIt() throws {
        let base = work + "/runs/dcgan-bce-20261206T212541Z"
        XCTAssertEqual(try RunFolder.claimUnique(base), base)
        XCTAssertEqual(try RunFolder.claimUnique(base), base + "-2")
        XCTAssertEqual(try RunFolder.claimUnique(base), base + "-3")
        XCTAssertThrowsError(try RunFolder.claim(base)) { XCTAssertTrue($0 is RunFolderTaken, "\($0)") }
        // A folder with only a launcher's logs/ in it (cluster/local.sh makes it first) is not a run yet.
        try FileManager.default.createDirectory(atPath: work + "/runs/launched/logs", withIntermediateDirectories: true)
        XCTAssertNoThrow(try RunFolder.claim(work + "/runs/launched"))
        XCTAssertThrowsError(try RunFolder.claim(work + "/runs/launched")) { XCTAssertTrue($0 is RunFolderTaken, "\($0)") }
        // An existing empty folder may be claimed, once.
        try FileManager.default.createDirectory(atPath: work + "/runs/empty", withIntermediateDirectories: true)
        XCTAssertNoThrow(try RunFolder.claim(work + "/runs/empty"))
        XCTAssertThrowsError(try RunFolder.claim(work + "/runs/empty")) { XCTAssertTrue($0 is RunFolderTaken, "\($0)") }
        // Many claimants at once: each gets a folder of its own.
        final class Claimed: @unchecked Sendable { let lock = NSLock(); var paths: [String] = [] }
        let claimed = Claimed(), dir = work
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            if let p = try? RunFolder.claimUnique(dir + "/runs/race") { claimed.lock.lock(); claimed.paths.append(p); claimed.lock.unlock() }
        }
        XCTAssertEqual(claimed.paths.count, 8)
        XCTAssertEqual(Set(claimed.paths).count, 8, "\(claimed.paths)")
    }

    /// A --runs-dir that cannot hold runs gets a plain reason naming it and the flag (before, a
    /// missing parent read "The operation could not be completed. The file doesn't exist." and a
    /// file in the path "A file with the same name already exists."). The unwritable case runs
    /// gan as nobody (setpriv) when the suite is root, since root may write anywhere.
    func testUnusableRunsDirSaysWhy() throws {
        let file = work + "/a-file"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        let r1 = try runProcess(ganBinary, ["train", "--steps", "1", "--runs-dir", file + "/runs"] + tiny, cwd: work)
        XCTAssertEqual(r1.status, 1, r1.stderr)
        XCTAssertTrue(r1.stderr.contains("\(file) is a file, not a folder"), r1.stderr)
        XCTAssertTrue(r1.stderr.contains("choose another --runs-dir"), r1.stderr)
        XCTAssertFalse(r1.stderr.contains("operation could not be completed"), r1.stderr)
        let locked = work + "/locked"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
        chmod(work, 0o755)
        chmod(locked, 0o555)
        let setpriv = "/usr/bin/setpriv"
        let asRoot = getuid() == 0
        if asRoot && !FileManager.default.isExecutableFile(atPath: setpriv) { throw XCTSkip("no \(setpriv) to run gan as nobody") }
        // nobody may not reach the repository (a clone under /root, mode 700): the binary and the
        // digits are copied into the (world-readable) work folder first.
        let fm = FileManager.default
        try fm.copyItem(atPath: ganBinary, toPath: work + "/gan")
        try fm.copyItem(atPath: mnistFolder, toPath: work + "/mnist")
        chmod(work + "/gan", 0o755)
        chmod(work + "/mnist", 0o755)
        for f in try fm.contentsOfDirectory(atPath: work + "/mnist") { chmod(work + "/mnist/" + f, 0o644) }
        var flags = tiny
        flags[flags.firstIndex(of: "--data")! + 1] = work + "/mnist"
        let (exe, args) = asRoot ? (setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", work + "/gan"]) : (work + "/gan", [])
        let r2 = try runProcess(exe, args + ["train", "--steps", "1", "--runs-dir", locked + "/runs", "--name", "x"] + flags, cwd: "/tmp")
        XCTAssertEqual(r2.status, 1, r2.stderr)
        XCTAssertTrue(r2.stderr.contains("permission denied: this user cannot write \(locked)"), r2.stderr)
    }

    /// `gan train` twice at once without --name: two run folders, each with one run's files.
    func testTwoRunsStartedTogetherGetTwoFolders() throws {
        let runs = try (0..<2).map { i in
            try LoggedProcess(ganBinary, ["train", "--steps", "3"] + tiny, cwd: work, log: work + "/run\(i).log")
        }
        for r in runs { XCTAssertEqual(r.exitStatus(), 0, r.text) }
        let folders = files("runs")
        XCTAssertEqual(folders.count, 2, "\(folders)\n" + runs.map(\.text).joined())
        for f in folders {
            let lines = try String(contentsOfFile: work + "/runs/\(f)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.count, 3, "\(f): one run's metrics")
            XCTAssertEqual(files("runs/\(f)").filter { $0.hasPrefix("events.out.tfevents") }.count, 1, "\(f): \(files("runs/\(f)"))")
            XCTAssertEqual(files("runs/\(f)/checkpoints"), ["step_00000003.rgan"])
        }
    }

    /// `--name same` for a second fresh run is refused, naming --resume auto, before anything is
    /// written; the first run's files stay as they were, and --resume auto continues it.
    func testANewRunIntoAnExistingRunFolderIsRefusedNamingResumeAuto() throws {
        try gan(["train", "--name", "same", "--steps", "2"] + tiny, cwd: work)
        let ckpt = work + "/runs/same/checkpoints/step_00000002.rgan"
        let before = try Data(contentsOf: URL(fileURLWithPath: ckpt))
        let metrics = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/same/metrics.jsonl"))
        let r = try gan(["train", "--name", "same", "--steps", "2", "--seed", "9"] + tiny, cwd: work, expect: 64)
        XCTAssertTrue(r.stderr.contains("--name same: runs/same already holds a run (checkpoints, config.json"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--resume auto"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: ckpt)), before)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: work + "/runs/same/metrics.jsonl")), metrics)
        XCTAssertEqual(files("runs/same").filter { $0.hasPrefix("events.out.tfevents") }.count, 1)
        // The coordinator refuses it the same way, before it listens.
        let c = try runProcess(builtExecutable("gan-coordinator"), ["--workers", "1", "--spawn", "--port", "0", "--name", "same", "--steps", "2"] + tiny,
                               cwd: work, timeout: 60)
        XCTAssertEqual(c.status, 64, c.both)
        XCTAssertTrue(c.stderr.contains("runs/same already holds a run") && c.stderr.contains("--resume auto"), c.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/runs/same/logs"), "a worker was spawned")
        // What the message says works.
        try gan(["train", "--name", "same", "--steps", "3", "--resume", "auto"] + tiny, cwd: work)
        XCTAssertEqual(files("runs/same/checkpoints"), ["step_00000002.rgan", "step_00000003.rgan"])
    }

    /// Every `gan import` of the same file gets a folder of its own.
    func testEveryImportGetsItsOwnFolder() throws {
        try gan(["train", "--name", "src", "--steps", "1"] + tiny, cwd: work)
        try gan(["export", "--checkpoint", "runs/src/checkpoints/step_00000001.rgan", "--out", "generator.safetensors"], cwd: work)
        let first = try gan(["import", "--safetensors", "generator.safetensors"], cwd: work)
        XCTAssertTrue(first.stdout.contains("wrote runs/import-generator/checkpoints/step_00000000.rgan"), first.stdout)
        let before = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/import-generator/checkpoints/step_00000000.rgan"))
        let second = try gan(["import", "--safetensors", "generator.safetensors", "--seed", "5"], cwd: work)
        XCTAssertTrue(second.stdout.contains("wrote runs/import-generator-2/checkpoints/step_00000000.rgan"), second.stdout)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: work + "/runs/import-generator/checkpoints/step_00000000.rgan")), before)
        XCTAssertEqual(files("runs"), ["import-generator", "import-generator-2", "src"])
    }

    /// `--name` is a folder inside --runs-dir: a path separator or '..' is a usage error.
    func testNameCannotLeaveTheRunsDir() throws {
        try FileManager.default.createDirectory(atPath: work + "/inner", withIntermediateDirectories: true)
        for name in ["../escape", "a/b", "..", "."] {
            let r = try gan(["train", "--name", name, "--steps", "1"] + tiny, cwd: work + "/inner", expect: 64)
            XCTAssertTrue(r.stderr.contains("--name '\(name)' must be a plain folder name inside --runs-dir"), r.stderr)
            let c = try runProcess(builtExecutable("gan-coordinator"), ["--workers", "1", "--spawn", "--name", name, "--steps", "1"] + tiny,
                                   cwd: work + "/inner", timeout: 60)
            XCTAssertEqual(c.status, 64, c.both)
        }
        XCTAssertEqual(files(""), ["inner"], "something was written outside: \(files(""))")
        XCTAssertEqual(files("inner"), [])
    }

    /// A checkpoint writer killed mid-write leaves `.step_N.rgan.tmp-PID`. The next run on the
    /// folder (here `gan train --resume auto`, as a restart does) removes those of dead writers
    /// and leaves a live writer's; so does `AtomicFile` when it first writes into a folder.
    func testStaleTemporariesOfDeadWritersAreRemoved() throws {
        // A PID that was a process and is gone (reaped), and one that is alive.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let live = Process()
        live.executableURL = URL(fileURLWithPath: "/bin/sleep")
        live.arguments = ["60"]
        try live.run()
        defer { live.terminate(); live.waitUntilExit() }
        let (dead, alive) = (gone.processIdentifier, live.processIdentifier)
        XCTAssertEqual(AtomicFile.temporaryWriter(".step_00000005.rgan.tmp-\(dead)"), dead)
        XCTAssertNil(AtomicFile.temporaryWriter("step_00000005.rgan"))
        XCTAssertNil(AtomicFile.temporaryWriter(".tmp-12"))
        XCTAssertNil(AtomicFile.temporaryWriter(".x.tmp-12a"))

        let ck = work + "/runs/killed/checkpoints", samples = work + "/runs/killed/samples"
        try FileManager.default.createDirectory(atPath: ck, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: samples, withIntermediateDirectories: true)
        let staleCkpt = ck + "/.step_00000005.rgan.tmp-\(dead)", liveCkpt = ck + "/.step_00000005.rgan.tmp-\(alive)"
        let staleGrid = samples + "/.step_00000005.png.tmp-\(dead)"
        let fresh = ck + "/.step_00000004.rgan.tmp-\(dead)"   // a dead writer's, but written just now
        // Killed a while ago: older than the minute a writer in another container is given.
        for p in [staleCkpt, liveCkpt, staleGrid] {
            XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data(repeating: 7, count: 100)))
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-120)], ofItemAtPath: p)
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: fresh, contents: Data([1])))
        let r = try LoggedProcess(ganBinary, ["train", "--steps", "2", "--name", "killed", "--resume", "auto"] + tiny, cwd: work, log: work + "/train.log")
        XCTAssertEqual(r.exitStatus(), 0, r.text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: staleCkpt), r.text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: staleGrid), r.text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: liveCkpt), "a live writer's temporary was removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh), "a temporary written a moment ago was removed")
        XCTAssertTrue(r.text.contains("removed runs/killed/checkpoints/.step_00000005.rgan.tmp-\(dead): a temporary file left by a writer that was killed before it finished"), r.text)
        XCTAssertEqual(files("runs/killed/checkpoints").filter { !$0.hasPrefix(".") }, ["step_00000002.rgan"])

        // AtomicFile itself, writing into a folder for the first time.
        let other = work + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let s2 = other + "/.grid.png.tmp-\(dead)", l2 = other + "/.grid.png.tmp-\(alive)"
        for p in [s2, l2] {
            XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data([1])))
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-120)], ofItemAtPath: p)
        }
        try AtomicFile.write(Data([2]), to: other + "/grid.png")
        XCTAssertEqual(files("other"), [".grid.png.tmp-\(alive)", "grid.png"])
    }
}
