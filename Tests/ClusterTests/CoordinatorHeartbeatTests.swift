import Cluster
import Collectives
import Foundation
import TestSupport
import XCTest

/// The coordinator's heartbeats to its workers. It sends shards only `--prefetch` steps ahead of
/// the slowest rank and nothing else between them, so at a run's end a worker heard nothing for
/// prefetch x step seconds: where that passed the I/O timeout (a slow model on a small machine),
/// every worker took the silence for a lost coordinator and the run ended without its final
/// checkpoint (found by the emulated cluster: dcgan 64, 21 s steps, 3 ahead, 60 s timeout).
extension ClusterTests {
    func testSlowStepsOutlastingTheIOTimeoutEndTheRunNormally() throws {
        let p = port()
        // 32 steps ahead at 0.1 s a step or more (more in a debug build): the coordinator has no shard to send for the
        // last 32 steps' time, several times the 2 s I/O timeout.
        let args = ["--model", "dcgan", "--image-size", "32", "--ngf", "16", "--ndf", "16", "--batch", "64", "--steps", "40",
                    "--data", mnistFolder, "--runs-dir", "runs", "--name", "slow", "--sample-every", "0", "--checkpoint-every", "0", "--seed", "7"]
        let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token",
                                                   "--prefetch", "32", "--io-timeout", "2"] + args, log: "coord.log")
        let ws = try workers(2, port: p)
        XCTAssertEqual(wait(coord, within: 180), 0, text("coord.log") + text("w0.log") + text("w1.log"))
        for (r, w) in ws.enumerated() {
            XCTAssertEqual(wait(w, within: 20), 0, text("w\(r).log"))
            XCTAssertFalse(text("w\(r).log").contains("lost the coordinator"), text("w\(r).log"))
        }
        XCTAssertEqual(checkpointNames("slow"), ["step_00000040.rgan"], text("w0.log"))
        // The silence the heartbeats bridged really was longer than the timeout: the last 32
        // steps (whose shards were all sent before any of them ended) took more than 2 s.
        let lines = text("runs/slow/metrics.jsonl").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let last = lines.filter { ($0["step"] as? Int ?? 0) > 8 }.compactMap { $0["step_seconds"] as? Double }
        XCTAssertEqual(last.count, 32, "\(lines.count) metrics lines")
        XCTAssertGreaterThan(last.reduce(0, +), 2, "the steps were too fast to test the silence: \(last)")
    }

    /// Heartbeats go only to workers whose hello says they take them: a worker of an older
    /// version refuses any frame it does not know, and would stop at the first one.
    func testHeartbeatsGoOnlyToWorkersThatTakeThem() throws {
        for takes in [true, false] {
            let p = port()
            let name = takes ? "takes" : "older"
            let coord = try launch("gan-coordinator", ["--workers", "1", "--port", "\(p)", "--token-file", "token", "--dead-after", "60"]
                                   + trainArgs(steps: 50, name: name), log: "\(name).log")
            let auth = try Authenticator(token: "cluster-test-token-0123456789")
            let hello = HelloMessage(rank: 0, ringHost: "127.0.0.1", ringPort: port(), pid: 99_999, heartbeats: takes ? true : nil)
            let fake = try Handshake.dial("127.0.0.1", p, name: "coordinator", claim: .hello, hello,
                                          auth: auth, role: "coordinator", within: 30, ioTimeout: 30)
            XCTAssertNoThrow(try fake.receive(.start, maxPayload: 1 << 20), text("\(name).log"))
            // Three seconds of what it sends a worker that trains nothing: shards, and beats?
            final class Counts: @unchecked Sendable { let lock = NSLock(); var beats = 0, batches = 0 }
            let counts = Counts()
            let reader = Thread {
                while let f = try? fake.receive(maxPayload: 1 << 22) {
                    counts.lock.lock()
                    if f.type == .heartbeat { counts.beats += 1 } else if f.type == .batch { counts.batches += 1 }
                    counts.lock.unlock()
                }
            }
            reader.start()
            usleep(3_000_000)
            counts.lock.lock()
            let (beats, batches) = (counts.beats, counts.batches)
            counts.lock.unlock()
            fake.close()
            XCTAssertEqual(batches, 3, "--prefetch 3 steps of shards")
            if takes {
                XCTAssertGreaterThanOrEqual(beats, 2, "about one a second")
            } else {
                XCTAssertEqual(beats, 0, "a worker whose hello does not take them gets none")
            }
            kill(coord.processIdentifier, SIGKILL)
            _ = wait(coord, within: 10)
        }
    }
}
