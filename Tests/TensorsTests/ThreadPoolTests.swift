import TestSupport
import XCTest
@testable import Tensors

/// The engine's thread pool, and that every op it splits gives the single-thread result.
final class ThreadPoolTests: XCTestCase {
    override func tearDown() { ThreadPool.setThreads(ThreadPool.defaultThreads) }

    func testEveryIndexRunsOnceAndNestedLoopsRunInline() {
        let pool = ThreadPool(threads: 3)
        defer { pool.shutdown() }
        for count in [0, 1, 15, 16, 17, 1000, 100_003] {
            var hits = [Int32](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
                pool.parallelFor(count, grain: 7, align: 4) { r in
                    // A loop inside a loop runs on the calling worker.
                    pool.parallelFor(r.count, grain: 1) { inner in
                        for i in inner { h[r.lowerBound + i] += 1 }
                    }
                }
            }
            XCTAssertEqual(hits.filter { $0 != 1 }.count, 0, "count \(count)")
        }
        // Many short loops back to back (the workers' spin-then-sleep hand-over).
        var total = 0
        for _ in 0..<2000 {
            var parts = [Int](repeating: 0, count: 3)
            parts.withUnsafeMutableBufferPointer { p in pool.run(parts: 3) { i in p[i] = i + 1 } }
            total += parts.reduce(0, +)
        }
        XCTAssertEqual(total, 2000 * 6)
    }

    func testPoolsStopCleanly() {
        for n in 1...4 {
            var seen = [Int](repeating: 0, count: n)
            do {
                let pool = ThreadPool(threads: n)
                seen.withUnsafeMutableBufferPointer { s in pool.run(parts: n) { i in s[i] = 1 } }
                pool.shutdown()
            }
            XCTAssertEqual(seen.reduce(0, +), n)
        }
        // Pools replaced as soon as they are made (their workers may not have started yet):
        // this used to read a destroyed pool through the workers' unowned reference.
        for i in 0..<50 {
            ThreadPool.setThreads(2 + i % 3)
            _ = ThreadPool.shared.threads
        }
    }

    /// More parts than threads (a cut fixed by `fixSplits`) run every part once, on any thread
    /// count; `parallelFor` and `parts(count:grain:)` cut by the fixed number, not the threads.
    func testFixedSplitsRunEveryPartOnAnyThreadCount() {
        defer { ThreadPool.fixSplits(nil) }
        for threads in 1...3 {
            let pool = ThreadPool(threads: threads)
            defer { pool.shutdown() }
            ThreadPool.fixSplits(5)
            XCTAssertEqual(pool.splits, 5)
            XCTAssertEqual(pool.parts(count: 1000, grain: 1), 5)
            var seen = [Int](repeating: 0, count: 7)
            seen.withUnsafeMutableBufferPointer { s in pool.run(parts: 7) { i in s[i] += 1 } }
            XCTAssertEqual(seen, [Int](repeating: 1, count: 7), "\(threads) thread(s)")
            var ranges = [Range<Int>]()
            let lock = NSLock()
            pool.parallelFor(1000, grain: 1, align: 1) { r in lock.lock(); ranges.append(r); lock.unlock() }
            XCTAssertEqual(ranges.count, 5, "\(threads) thread(s)")
            ThreadPool.fixSplits(nil)
            XCTAssertEqual(pool.splits, threads)
        }
    }

    /// Runs `body` at 1 thread and at 3, and checks the results agree.
    private func sameAtAnyThreadCount(_ name: String, tolerance: Float = 0, _ body: () -> [Float]) {
        ThreadPool.setThreads(1)
        let serial = body()
        ThreadPool.setThreads(3)
        let parallel = body()
        XCTAssertEqual(serial.count, parallel.count, name)
        var worst: Float = 0
        for (a, b) in zip(serial, parallel) { worst = max(worst, abs(a - b) / max(1, abs(a))) }
        XCTAssertLessThanOrEqual(worst, tolerance, name)
    }

    func testSplitOpsMatchOneThread() {
        let a = sample([64, 32, 33], seed: 1, requiresGrad: false), b = sample([32, 1], seed: 2, requiresGrad: false)
        sameAtAnyThreadCount("add broadcast") { (a + b).toArray() }
        sameAtAnyThreadCount("mul same shape") { (a * a).toArray() }
        sameAtAnyThreadCount("tanh") { a.tanh().toArray() }
        sameAtAnyThreadCount("expand") { b.expand([64, 32, 33]).toArray() }
        sameAtAnyThreadCount("sumTo", tolerance: 1e-4) { a.sumTo([32, 1]).toArray() }
        sameAtAnyThreadCount("sumTo rows", tolerance: 1e-4) { a.sumTo([1, 33]).toArray() }
        sameAtAnyThreadCount("sum all", tolerance: 1e-6) { a.sum().toArray() }
        let m1 = sample([96, 200], seed: 3, requiresGrad: false), m2 = sample([200, 300], seed: 4, requiresGrad: false)
        sameAtAnyThreadCount("matmul wide", tolerance: 1e-4) { matmul(m1, m2).toArray() }
        sameAtAnyThreadCount("matmul tall", tolerance: 1e-4) { matmul(m2.t, m1.t).toArray() }
        sameAtAnyThreadCount("matmulT", tolerance: 1e-4) { matmulT(m2, m2, transA: true, transB: false).toArray() }
    }

    func testConvAndBatchNormGradientsMatchOneThread() {
        let x = sample([10, 3, 12, 12], seed: 5), w = sample([8, 3, 4, 4], seed: 6, scale: 0.3)
        let wt = sample([8, 4, 4, 4], seed: 7, scale: 0.3)
        let bw = sample([8], seed: 8, positive: true), bb = sample([8], seed: 9)
        sameAtAnyThreadCount("conv stack", tolerance: 1e-4) {
            for t in [x, w, wt, bw, bb] { t.grad = nil }
            let h = batchNormTraining(conv2d(x, w, stride: 2, padding: 1), weight: bw, bias: bb, eps: 1e-5).0.relu()
            let y = convTranspose2d(h, wt, stride: 2, padding: 1)
            (y * y).sum().backward()
            return y.toArray() + x.grad!.toArray() + w.grad!.toArray() + wt.grad!.toArray() + bw.grad!.toArray() + bb.grad!.toArray()
        }
    }
}
