import Foundation
import GAN
import TestSupport
import XCTest
@testable import Tensors

/// Coordinator and workers as separate processes over loopback: a full run, resume, killed and
/// hung workers, re-formation, and bad peers.
final class ClusterTests: XCTestCase {
    var work = ""
    var procs: [Process] = []
    static let portLock = NSLock()
    nonisolated(unsafe) static var nextPort: UInt16 = UInt16(20000 + Int(getpid()) % 20000)

    override func setUpWithError() throws {
        work = try makeTempDir(self)   // removed when the test ends, after the block below
        // Teardown blocks run last-added first: the processes end before their folder goes.
        addTeardownBlock { [unowned self] in
            for p in procs where p.isRunning { kill(p.processIdentifier, SIGCONT); p.terminate() }
            let deadline = Date().addingTimeInterval(10)
            for p in procs {
                while p.isRunning && Date() < deadline { usleep(20_000) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            }
        }
        try "cluster-test-token-0123456789\n".write(toFile: work + "/token", atomically: true, encoding: .utf8)
        chmod(work + "/token", 0o600)   // a token file others may read is refused
    }

    func port() -> UInt16 {
        Self.portLock.lock(); defer { Self.portLock.unlock() }
        Self.nextPort += 7
        return Self.nextPort
    }


    /// Starts a process whose output goes to `log` (in the work folder): TestSupport's
    /// `LoggedProcess`, ended at teardown.
    @discardableResult
    func launch(_ exe: String, _ args: [String], log: String, env extra: [String: String] = [:]) throws -> Process {
        let p = try LoggedProcess(builtExecutable(exe), args, cwd: work, log: work + "/" + log, env: extra)
        procs.append(p.process)
        return p.process
    }

    /// The exit status of `p` (a signal's number when one ended it); the test fails when it
    /// does not exit within `seconds` (TestSupport's `waitForExit`).
    func wait(_ p: Process, within seconds: Double, file: StaticString = #filePath, line: UInt = #line) -> Int32? {
        waitForExit(p, within: seconds, file: file, line: line)
    }

    /// Waits up to 60 s for `path` (under the work folder) to exist; the test fails, naming it,
    /// when it does not (TestSupport's `waitForFile`).
    func waitForFile(_ path: String, file: StaticString = #filePath, line: UInt = #line) {
        TestSupport.waitForFile(work + "/" + path, within: 60, file: file, line: line)
    }

    /// The run's event log (`runs/NAME/events.jsonl`): how the tests judge what a run did.
    func events(_ run: String, file: StaticString = #filePath, line: UInt = #line) -> [RunEvent] {
        do { return try RunFolder(path: work + "/runs/" + run).events() } catch {
            XCTFail("\(error)", file: file, line: line)
            return []
        }
    }

    func text(_ log: String) -> String { (try? String(contentsOfFile: work + "/" + log, encoding: .utf8)) ?? "" }

    /// A raw TCP connection to the coordinator's port (retried until it listens) that sends nothing.
    func rawConnection(_ p: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = p.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        for _ in 0..<200 {
            if withUnsafePointer(to: &addr, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0 { return fd }
            usleep(50_000)
        }
        XCTFail("cannot connect to 127.0.0.1:\(p)")
        return fd
    }

    func trainArgs(steps: Int, name: String) -> [String] {
        ["--model", "dcgan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch", "12", "--steps", "\(steps)",
         "--data", mnistFolder, "--runs-dir", "runs", "--name", name, "--sample-every", "5", "--checkpoint-every", "5", "--seed", "7"]
    }

    func checkpointTensors(_ path: String) throws -> [String: [Float]] {
        let c = try Checkpoint.read(path: work + "/" + path)
        return Dictionary(uniqueKeysWithValues: c.tensors.map { ($0.name, $0.tensor.toArray()) })
    }

    func workers(_ n: Int, port p: UInt16, from: Int = 0, prefix: String = "w") throws -> [Process] {
        try (from..<(from + n)).map { r in
            try launch("gan-worker", ["--rank", "\(r)", "--coordinator", "127.0.0.1:\(p)", "--token-file", "token", "--ring-host", "127.0.0.1"],
                       log: "\(prefix)\(r).log")
        }
    }

    /// A 3-worker run over separate processes, then a resume from its step-5 checkpoint, ends
    /// bit-identical to the uninterrupted run; and it equals one process with the same batch.
    func testClusterRunResumeAndSingleProcessEquivalence() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "3", "--port", "\(p)", "--token-file", "token"] + trainArgs(steps: 10, name: "full"),
                               log: "coord.log")
        let ws = try workers(3, port: p)
        XCTAssertEqual(wait(coord, within: 120), 0, text("coord.log") + text("w0.log"))
        for w in ws { XCTAssertEqual(wait(w, within: 20), 0) }
        let ckpts = try FileManager.default.contentsOfDirectory(atPath: work + "/runs/full/checkpoints").sorted()
        XCTAssertEqual(ckpts, ["step_00000005.rgan", "step_00000010.rgan"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/runs/full/samples/step_00000010.png"))

        // Resume from step 5 in a copy of the run: bit-identical end.
        try FileManager.default.createDirectory(atPath: work + "/runs/resumed/checkpoints", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: work + "/runs/full/checkpoints/step_00000005.rgan",
                                         toPath: work + "/runs/resumed/checkpoints/step_00000005.rgan")
        let p2 = port()
        let coord2 = try launch("gan-coordinator", ["--workers", "3", "--port", "\(p2)", "--token-file", "token",
                                                    "--resume", "runs/resumed/checkpoints/step_00000005.rgan"], log: "coord2.log")
        let ws2 = try workers(3, port: p2, prefix: "r")
        XCTAssertEqual(wait(coord2, within: 120), 0, text("coord2.log") + text("r0.log"))
        for w in ws2 { _ = wait(w, within: 20) }
        let a = try checkpointTensors("runs/full/checkpoints/step_00000010.rgan")
        let b = try checkpointTensors("runs/resumed/checkpoints/step_00000010.rgan")
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (k, v) in a { XCTAssertTrue(v == b[k], "resumed run differs in \(k)") }

        // One process, same flags: equal to float tolerance (gradients summed in another order).
        let single = Process()
        single.executableURL = URL(fileURLWithPath: builtExecutable("gan"))
        single.arguments = ["train"] + trainArgs(steps: 10, name: "single") + ["--json"]
        single.currentDirectoryURL = URL(fileURLWithPath: work)
        single.standardOutput = FileHandle.nullDevice
        single.standardError = FileHandle.nullDevice
        try single.run()
        single.waitUntilExit()
        XCTAssertEqual(single.terminationStatus, 0)
        let s = try checkpointTensors("runs/single/checkpoints/step_00000010.rgan")
        for k in a.keys where k.hasPrefix("G.") || k.hasPrefix("D.") {
            let scale = max(s[k]!.map { Swift.abs($0) }.max() ?? 0, 1e-3)
            let worst = zip(a[k]!, s[k]!).map { Swift.abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-3 * scale + 8e-4, "\(k): cluster vs single process")
        }
    }

    /// A killed worker stops the run with a clear message naming the rank and the last
    /// checkpoint, which is intact; with --min-workers the survivors re-form and finish.
    /// `gan-coordinator --time-limit`: a run planned for 100,000 steps stops after the budget
    /// (counted from the coordinator's start), every rank at the same step, with the final
    /// checkpoint and grid of that step written and every process exiting 0.
    func testCoordinatorTimeLimitEndsTheRunWithFinalCheckpointAndGrid() throws {
        let p = port()
        let started = Date()
        let args = ["--model", "dcgan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch", "12", "--steps", "100000",
                    "--data", mnistFolder, "--runs-dir", "runs", "--name", "timed", "--sample-every", "0", "--checkpoint-every", "0",
                    "--seed", "7", "--time-limit", "4s"]
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token"] + args, log: "coord.log")
        let ws = try workers(2, port: p)
        XCTAssertEqual(wait(coord, within: 90), 0, text("coord.log") + text("w0.log"))
        let elapsed = Date().timeIntervalSince(started)
        for w in ws { XCTAssertEqual(wait(w, within: 20), 0, text("w0.log") + text("w1.log")) }
        XCTAssertGreaterThanOrEqual(elapsed, 4)
        // Only the final checkpoint and grid (cadences 0), both of the same step, well short of 100,000.
        let ckpts = try FileManager.default.contentsOfDirectory(atPath: work + "/runs/timed/checkpoints")
        let grids = try FileManager.default.contentsOfDirectory(atPath: work + "/runs/timed/samples")
        XCTAssertEqual(ckpts.count, 1, "\(ckpts)")
        XCTAssertEqual(grids.count, 1, "\(grids)")
        let step = try Checkpoint.read(path: work + "/runs/timed/checkpoints/" + ckpts[0]).step
        XCTAssertGreaterThanOrEqual(step, 1)
        XCTAssertLessThan(step, 100_000)
        XCTAssertEqual(ckpts[0], String(format: "step_%08d.rgan", step))
        XCTAssertEqual(grids[0], String(format: "step_%08d.png", step))
        // The run ended at the time limit, every rank at that step.
        let ended = events("timed").last
        XCTAssertEqual(ended?.event, .ended)
        XCTAssertEqual(ended?.ending, .timeLimit)
        XCTAssertEqual(ended?.step, step)
        // A malformed duration is refused before anything starts.
        let bad = try launch("gan-coordinator", ["--workers", "1", "--port", "\(port())", "--token-file", "token", "--time-limit", "5 min"]
                             + args.dropLast(2), log: "bad.log")
        XCTAssertNotEqual(wait(bad, within: 30), 0)
        XCTAssertTrue(text("bad.log").contains("--time-limit '5 min'"), text("bad.log"))
    }

    func testKilledWorker() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "3", "--port", "\(p)", "--token-file", "token", "--dead-after", "5"]
                               + trainArgs(steps: 400, name: "killed"), log: "coord.log")
        let ws = try workers(3, port: p)
        // Wait for the first checkpoint, then kill rank 1.
        waitForFile("runs/killed/checkpoints/step_00000005.rgan")
        kill(ws[1].processIdentifier, SIGKILL)
        let code = wait(coord, within: 60)
        XCTAssertNotEqual(code, 0)
        let log = text("coord.log")
        // The error names the rank and the checkpoint to resume from; the event log records both.
        XCTAssertTrue(log.contains("rank 1"), log)
        XCTAssertTrue(log.contains("last checkpoint is"), log)
        let ev = events("killed")
        XCTAssertEqual(ev.map(\.event), [.formed, .lost, .ended], "\(ev)")
        XCTAssertEqual(ev.dropFirst().first?.ranks, [1])
        XCTAssertEqual(ev.last?.ending, .failed)
        XCTAssertNotNil(ev.last?.checkpoint)
        for w in [ws[0], ws[2]] { XCTAssertNotNil(wait(w, within: 60), "survivors exit too") }
        // Every checkpoint left behind reads back (none half-written).
        for f in try FileManager.default.contentsOfDirectory(atPath: work + "/runs/killed/checkpoints") {
            XCTAssertTrue(f.hasSuffix(".rgan"), "stray file \(f)")
            XCTAssertNoThrow(try Checkpoint.read(path: work + "/runs/killed/checkpoints/" + f))
        }
    }

    func testReformsWithSurvivors() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "3", "--min-workers", "2", "--port", "\(p)", "--token-file", "token",
                                                   "--dead-after", "5"] + trainArgs(steps: 30, name: "reform"), log: "coord.log")
        let ws = try workers(3, port: p)
        waitForFile("runs/reform/checkpoints/step_00000005.rgan")
        // Strangers connect during training and stay idle; they used to sit in the listen
        // backlog and be served first (5 s each, one at a time) when the ring re-formed.
        let idle = (0..<40).map { _ in rawConnection(p) }
        defer { for fd in idle { close(fd) } }
        kill(ws[2].processIdentifier, SIGKILL)
        XCTAssertEqual(wait(coord, within: 120), 0, text("coord.log"))
        let log = text("coord.log")
        // Lost rank 2, re-formed with the two survivors from a checkpoint, completed.
        let ev = events("reform")
        XCTAssertEqual(ev.map(\.event), [.formed, .lost, .formed, .ended], "\(ev)")
        XCTAssertEqual(ev[1].ranks, [2])
        XCTAssertEqual(ev[2].workers, 2)
        XCTAssertNotNil(ev[2].from, "the survivors resume from the last checkpoint")
        XCTAssertEqual(ev[3].ending, .completed)
        XCTAssertEqual(ev[3].step, 30)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/runs/reform/checkpoints/step_00000030.rgan"), log)
        XCTAssertNoThrow(try Checkpoint.read(path: work + "/runs/reform/checkpoints/step_00000030.rgan"))
    }

    /// A hung worker (stopped with SIGSTOP) is detected by its silence within --dead-after.
    func testHungWorkerIsDetected() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token", "--dead-after", "3"]
                               + trainArgs(steps: 2000, name: "hung"), log: "coord.log")
        let ws = try workers(2, port: p)
        waitForFile("runs/hung/checkpoints/step_00000005.rgan")
        let t0 = Date()
        kill(ws[0].processIdentifier, SIGSTOP)
        XCTAssertEqual(wait(coord, within: 60), 1, "a run that lost a worker (without --min-workers) fails")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30, "detected in bounded time")
        XCTAssertTrue(text("coord.log").contains("rank(s) [0] sent nothing for 3 s"), "the stopped rank is named: \(text("coord.log"))")
        XCTAssertEqual(events("hung").first { $0.event == .lost }?.ranks, [0])
        kill(ws[0].processIdentifier, SIGCONT)
    }

    /// Wrong token, duplicate and out-of-range ranks, and garbage bytes are refused; the run
    /// completes regardless.
    func testBadPeersAreRefused() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token"] + trainArgs(steps: 6, name: "bad"),
                               log: "coord.log")
        // Garbage first.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = p.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var connected = false
        for _ in 0..<100 where !connected {
            connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
            if !connected { usleep(50_000) }
        }
        XCTAssertTrue(connected)
        let junk = Array("\u{0}\u{1}GARBAGE GARBAGE GARBAGE GARBAGE".utf8)
        _ = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
        try "the-wrong-token-0123456789\n".write(toFile: work + "/badtoken", atomically: true, encoding: .utf8)
        chmod(work + "/badtoken", 0o600)
        let wrong = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(p)", "--token-file", "badtoken"], log: "wrong.log")
        XCTAssertEqual(wait(wrong, within: 30), 1)
        XCTAssertTrue(text("wrong.log").contains("wrong token"), text("wrong.log"))
        let out = try launch("gan-worker", ["--rank", "7", "--coordinator", "127.0.0.1:\(p)", "--token-file", "token"], log: "range.log")
        XCTAssertEqual(wait(out, within: 30), 3, "a refused claim: exit 3")
        XCTAssertTrue(text("range.log").contains("out of range"), text("range.log"))
        let ws = try workers(1, port: p)
        usleep(300_000)
        let dup = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(p)", "--token-file", "token"], log: "dup.log")
        XCTAssertEqual(wait(dup, within: 30), 3)
        XCTAssertTrue(text("dup.log").contains("already joined"), text("dup.log"))
        let last = try workers(1, port: p, from: 1)
        XCTAssertEqual(wait(coord, within: 120), 0, text("coord.log"))
        for w in ws + last { XCTAssertEqual(wait(w, within: 20), 0) }
        XCTAssertTrue(text("coord.log").contains("refused"), text("coord.log"))
    }
}
