import Collectives
import Foundation
import GAN
import Telemetry
import TestSupport
import XCTest
@testable import Cluster

/// The coordinator's replica check (issue 9, soak): every step on which every rank reports a
/// parameter checksum, the checksums are compared, and a difference stops the run. The workers
/// here are fakes that speak the protocol (handshake, start, step reports) but train nothing, so
/// the checksums they report are chosen by the test: real workers cannot be made to disagree.
final class ReplicaChecksumTests: XCTestCase {
    static let token = "replica-checksum-test-token-0123"

    /// A fake worker: joins; then (once every fake has joined: the start goes out after the
    /// rendezvous) takes its start message and drains the coordinator's frames on a thread,
    /// recording the stop (with its reason) or the end of the run.
    final class FakeWorker: @unchecked Sendable {
        let conn: Connection
        private(set) var start: StartMessage?
        private let lock = NSLock()
        private var _stop: String?
        private var _finished = false
        private var _batches = 0
        var stopReason: String? { lock.lock(); defer { lock.unlock() }; return _stop }
        var finished: Bool { lock.lock(); defer { lock.unlock() }; return _finished }
        var batches: Int { lock.lock(); defer { lock.unlock() }; return _batches }

        init(rank: Int, port: UInt16) throws {
            let auth = try Authenticator(token: ReplicaChecksumTests.token)
            conn = try Handshake.dial("127.0.0.1", port, name: "coordinator", claim: .hello,
                                      HelloMessage(rank: rank, ringHost: "127.0.0.1", ringPort: UInt16(40000 + rank), pid: 90000 + Int32(rank)),
                                      auth: auth, role: "coordinator", within: 30, ioTimeout: 30)
        }

        func begin() throws {
            start = try conn.receive(.start, maxPayload: 1 << 20).decode(StartMessage.self, from: conn.peer)
            Thread { [self] in
                while true {
                    guard let f = try? conn.receive(maxPayload: 1 << 20) else { return }
                    lock.lock()
                    switch f.type {
                    case .batch: _batches += 1
                    case .stop: _stop = (try? f.decode(StopMessage.self, from: "coordinator"))?.reason ?? "?"
                    case .finished: _finished = true
                    default: break
                    }
                    lock.unlock()
                }
            }.start()
        }

        func report(step: Int, checksum: UInt32?) throws {
            var m = StepMetrics()
            m.step = step
            try conn.send(.stepDone, json: StepDoneMessage(shard: 2, metrics: m, checksum: checksum, wireBytes: 0, rawBytes: 0))
        }
    }

    /// Runs a coordinator for two fake workers over `steps` steps; `checksum(rank, step)` is what
    /// each reports (nil: none that step). Returns the coordinator's error (nil: the run
    /// completed), the steps it showed as done, and the workers.
    func run(steps: Int, checksumEvery: Int, checksum: @escaping (Int, Int) -> UInt32?) throws
        -> (error: Error?, shown: [Int], workers: [FakeWorker]) {
        var c = GANConfig()
        c.model = .mlp
        c.imageSize = 28
        c.batchSize = 4
        c.steps = steps
        c.dataDir = mnistFolder
        let dir = try makeTempDir(self)
        var o = CoordinatorOptions(workers: 2, token: Self.token, config: c, runDir: dir + "/run")
        o.port = 0
        o.checksumEvery = checksumEvery
        o.rendezvousTimeout = 30
        o.deadAfter = 30
        let coordinator = try Coordinator(options: o, logger: Logger(label: "test") { LineLogHandler(label: $0, level: .warning) })
        final class Outcome: @unchecked Sendable { var error: Error?; var done = false; var shown: [Int] = [] }
        final class Box: @unchecked Sendable { let coordinator: Coordinator; init(_ c: Coordinator) { coordinator = c } }
        let out = Outcome(), box = Box(coordinator)
        let lock = NSLock()
        Thread {
            do {
                try box.coordinator.run { s in lock.lock(); out.shown.append(s.metrics.step); lock.unlock() }
            } catch { lock.lock(); out.error = error; lock.unlock() }
            lock.lock(); out.done = true; lock.unlock()
        }.start()
        let workers = try (0..<2).map { try FakeWorker(rank: $0, port: coordinator.port) }
        for w in workers { try w.begin() }
        XCTAssertEqual(workers.map { $0.start?.checksumEvery }, [checksumEvery, checksumEvery])
        func isDone() -> Bool { lock.lock(); defer { lock.unlock() }; return out.done }
        step: for s in 1...steps {
            for (r, w) in workers.enumerated() {
                if isDone() { break step }
                try? w.report(step: s, checksum: checksum(r, s))
            }
            // One step at a time, as real ranks report them (and the shards keep coming).
            let until = Date().addingTimeInterval(10)
            while !isDone() && Date() < until {
                lock.lock(); let n = out.shown.count; lock.unlock()
                if n >= s { break }
                usleep(2_000)
            }
        }
        if !isDone() { for w in workers { try? w.conn.send(.finished, payload: UnsafeRawBufferPointer(start: nil, count: 0)) } }
        let until = Date().addingTimeInterval(30)
        while !isDone() && Date() < until { usleep(10_000) }
        XCTAssertTrue(isDone(), "the coordinator did not end")
        lock.lock(); defer { lock.unlock() }
        return (out.error, out.shown, workers)
    }

    /// Equal checksums on every compared step: the run completes and every step is shown.
    func testEqualChecksumsLetTheRunFinish() throws {
        let r = try run(steps: 6, checksumEvery: 2) { _, s in s % 2 == 0 ? 0xC0FFEE00 + UInt32(s) : nil }
        XCTAssertNil(r.error)
        XCTAssertEqual(r.shown, Array(1...6))
        let until = Date().addingTimeInterval(5)
        while !r.workers.allSatisfy({ $0.finished }) && Date() < until { usleep(10_000) }
        XCTAssertTrue(r.workers.allSatisfy { $0.finished }, "the workers were not told the run is over")
        XCTAssertTrue(r.workers.allSatisfy { $0.stopReason == nil })
    }

    /// Rank 1 disagrees at step 4 (after agreeing at step 2): the run stops there with
    /// "replicas diverged at step 4" naming both checksums, step 4 is not shown as done, and
    /// every rank is told to stop (not to re-form).
    func testAMismatchStopsTheRun() throws {
        let r = try run(steps: 8, checksumEvery: 2) { rank, s in
            guard s % 2 == 0 else { return nil }
            return rank == 1 && s == 4 ? 0xBAD0BAD0 : 0x600D0000 + UInt32(s)
        }
        let e = try XCTUnwrap(r.error, "a mismatch did not stop the run")
        XCTAssertTrue(e is CoordinatorFailure, "\(e)")
        XCTAssertTrue("\(e)".contains("replicas diverged at step 4"), "\(e)")
        XCTAssertTrue("\(e)".contains("600d0004") && "\(e)".contains("bad0bad0"), "\(e)")
        XCTAssertEqual(r.shown, [1, 2, 3])
        let until = Date().addingTimeInterval(5)
        while !r.workers.allSatisfy({ $0.stopReason != nil }) && Date() < until { usleep(10_000) }
        XCTAssertEqual(r.workers.map { $0.stopReason }, ["replicas diverged", "replicas diverged"])
    }

    /// A step on which only some ranks report a checksum is not compared (the worker sends one
    /// on the same steps on every rank, so this only happens with a broken worker): no stop.
    func testAPartialSetIsNotCompared() throws {
        let r = try run(steps: 4, checksumEvery: 2) { rank, s in s == 2 && rank == 0 ? 1 : (s == 4 ? 7 : nil) }
        XCTAssertNil(r.error)
        XCTAssertEqual(r.shown, Array(1...4))
    }
}
