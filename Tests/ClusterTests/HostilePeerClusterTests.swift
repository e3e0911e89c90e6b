import Collectives
import Foundation
import GAN
import TestSupport
import XCTest

/// Strangers on the coordinator's port, a fake coordinator and bad tokens, against the real
/// gan-coordinator and gan-worker processes.
extension ClusterTests {
    /// 100 idle connections and one that sends a byte every 4 s, all made before the workers
    /// arrive: the run completes (it used to end with "only 0 of 2 workers joined", or wait past
    /// the rendezvous timeout behind the slow one).
    func testIdleAndSlowDripConnectionsBeforeTheWorkersArrive() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token", "--rendezvous-timeout", "20"]
                               + trainArgs(steps: 4, name: "idle"), log: "coord.log")
        let idle = (0..<100).map { _ in rawConnection(p) }
        defer { for fd in idle { close(fd) } }
        let drip = SlowDrip(fd: rawConnection(p), bytes: Array("RGAN".utf8) + [Frame.version, FrameType.hello.rawValue, 0, 0], every: 4)
        defer { drip.stop() }
        usleep(500_000)
        let t0 = Date()
        let ws = try workers(2, port: p)
        XCTAssertEqual(wait(coord, within: 90), 0, text("coord.log"))
        for w in ws { XCTAssertEqual(wait(w, within: 20), 0, text("w0.log")) }
        // (The run is done before the strangers' 5 s deadlines pass: they are no obstacle.)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/runs/idle/checkpoints/step_00000004.rgan"))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 60)
    }

    /// A fake coordinator (no token) that answers the worker's hello with a welcome and a start
    /// message pointing at its own run folder: the worker refuses it before reading the start.
    func testFakeCoordinatorCannotSteerAWorker() throws {
        let l = try Listener(host: "127.0.0.1", port: 0)
        let stolen = work + "/stolen-run"
        final class Seen: @unchecked Sendable { var claim = 0; var sentStart = false }
        let seen = Seen()
        let fake = Thread {
            guard let c = try? l.accept(timeout: 30, ioTimeout: 10) else { return }
            try? c.send(.challenge, bytes: Authenticator.challenge())
            guard let f = try? c.receive(.hello) else { return }
            seen.claim = f.payload.count
            try? c.send(.welcome, bytes: Authenticator.challenge())   // cannot make the real proof
            let start = "{\"runDir\":\"\(stolen)\",\"rank\":0,\"worldSize\":1}"
            seen.sentStart = (try? c.send(.start, bytes: Array(start.utf8))) != nil
            Thread.sleep(forTimeInterval: 2)
        }
        fake.start()
        let w = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(l.port)", "--token-file", "token", "--ring-host", "127.0.0.1"],
                           log: "w.log")
        XCTAssertEqual(wait(w, within: 30), 1)
        let log = text("w.log")
        XCTAssertTrue(log.contains("did not prove the shared token"), log)
        XCTAssertGreaterThan(seen.claim, 64, "the fake got the worker's claim")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stolen), "the worker wrote where the fake told it")
    }

    /// Empty and short tokens are refused from the environment and from files, and a token
    /// file that its group or others can read is refused, by both programs, before anything
    /// listens or connects.
    func testBadTokensAreRefused() throws {
        let p = port()
        let coordArgs = ["--workers", "1", "--port", "\(p)"] + trainArgs(steps: 2, name: "tok")
        for (env, why) in [("", "empty"), ("   ", "empty"), ("short", "at least 16")] {
            let c = try launch("gan-coordinator", coordArgs, log: "c.log", env: ["RINGGAN_TOKEN": env])
            XCTAssertNotEqual(wait(c, within: 30), 0)
            XCTAssertTrue(text("c.log").contains(why), "coordinator, RINGGAN_TOKEN='\(env)': " + text("c.log"))
            let w = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(p)"], log: "w.log", env: ["RINGGAN_TOKEN": env])
            XCTAssertNotEqual(wait(w, within: 30), 0)
            XCTAssertTrue(text("w.log").contains(why), "worker, RINGGAN_TOKEN='\(env)': " + text("w.log"))
        }
        try "\n".write(toFile: work + "/empty", atomically: false, encoding: .utf8)
        chmod(work + "/empty", 0o600)
        try "cluster-test-token-0123456789\n".write(toFile: work + "/open", atomically: false, encoding: .utf8)
        chmod(work + "/open", 0o644)
        for (file, why) in [("empty", "empty"), ("open", "permissions are 0644")] {
            let c = try launch("gan-coordinator", coordArgs + ["--token-file", file], log: "c.log")
            XCTAssertNotEqual(wait(c, within: 30), 0)
            XCTAssertTrue(text("c.log").contains(why), "coordinator, \(file): " + text("c.log"))
            let w = try launch("gan-worker", ["--rank", "0", "--coordinator", "127.0.0.1:\(p)", "--token-file", file], log: "w.log")
            XCTAssertNotEqual(wait(w, within: 30), 0)
            XCTAssertTrue(text("w.log").contains(why), "worker, \(file): " + text("w.log"))
        }
    }
}

extension ClusterTests {
    /// A frozen worker (SIGSTOP) with --min-workers and --spawn: detected within --dead-after,
    /// the survivors (blocked on the frozen neighbour's ring socket) stop at once and re-form,
    /// the run finishes, and the coordinator kills and reaps the stopped child instead of
    /// waiting on it forever. (It used to take the ring's 60 s read timeout, and never exit.)
    func testFrozenSpawnedWorkerIsReplacedInTimeAndReaped() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "3", "--min-workers", "2", "--port", "\(p)", "--spawn", "--dead-after", "3"]
                               + trainArgs(steps: 40, name: "frozen"), log: "coord.log")
        waitForFile("runs/frozen/checkpoints/step_00000005.rgan")
        let log0 = text("coord.log")
        guard let r = log0.range(of: #"spawned rank 1 \(pid (\d+)\)"#, options: .regularExpression) else {
            return XCTFail("no spawned rank 1 in the log: \(log0)")
        }
        let pid = pid_t(log0[r].split(separator: " ").last!.dropLast())!
        let t0 = Date()
        kill(pid, SIGSTOP)
        // Re-formed: a second "started" line, within --dead-after plus the re-formation.
        var reformedAfter: Double?
        while Date().timeIntervalSince(t0) < 60 {
            if text("coord.log").components(separatedBy: "started 2 worker(s)").count > 1 { reformedAfter = Date().timeIntervalSince(t0); break }
            usleep(100_000)
        }
        let seconds = try XCTUnwrap(reformedAfter, text("coord.log"))
        XCTAssertLessThan(seconds, 3 + 12, "re-formed \(seconds) s after the SIGSTOP")
        XCTAssertEqual(wait(coord, within: 120), 0, text("coord.log"))
        XCTAssertNoThrow(try Checkpoint.read(path: work + "/runs/frozen/checkpoints/step_00000040.rgan"))
        // The stopped child is gone (killed and reaped: not even a zombie).
        XCTAssertEqual(kill(pid, 0), -1)
        XCTAssertEqual(errno, ESRCH)
    }
}

extension ClusterTests {
    /// A spawned worker that dies by a signal it was not sent by the coordinator (here SIGKILL,
    /// as the kernel's OOM killer sends; a trapped Swift runtime error ends in SIGILL or SIGTRAP)
    /// leaves the coordinator's output naming it, the signal and what its log says, not only
    /// "lost rank 1" (issue 26: the cause was only in the workers' logs).
    func testASpawnedWorkersCrashReachesTheCoordinatorsOutput() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--spawn"] + trainArgs(steps: 5000, name: "crash"),
                               log: "coord.log")
        // Training has begun (the first steps are reported).
        let until = Date().addingTimeInterval(60)
        while !events("crash").contains(where: { $0.event == .formed }) && Date() < until { usleep(100_000) }
        usleep(1_000_000)
        let log0 = text("coord.log")
        guard let r = log0.range(of: #"spawned rank 1 \(pid (\d+)\)"#, options: .regularExpression) else {
            return XCTFail("no spawned rank 1 in the log: \(log0)")
        }
        let pid = pid_t(log0[r].split(separator: " ").last!.dropLast())!
        kill(pid, SIGKILL)
        XCTAssertEqual(wait(coord, within: 60), 1, text("coord.log"))
        let out = text("coord.log")
        XCTAssertTrue(out.contains("spawned rank 1 (pid \(pid)) crashed (signal \(SIGKILL)"), out)
        XCTAssertTrue(out.contains("runs/crash/logs/rank-1.log says:"), out)
    }
}
