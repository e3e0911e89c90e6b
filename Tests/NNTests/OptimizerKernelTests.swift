import CKernels
import XCTest
@testable import NN
@testable import Tensors

/// Adam's and RMSprop's vector loops (CKernels, AVX or SSE2 chosen at run time) give bit for bit
/// what their formulas give one value at a time, in Swift, for every length (the vector body and
/// the scalar tail) and with or without weight decay; and the optimizers split over threads give
/// the same bits as on one.
final class OptimizerKernelTests: XCTestCase {
    private func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return (0..<n).map { _ in rng.normal() * scale }
    }

    private func assertSameBits(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        if let i = got.indices.first(where: { i in i < want.count && got[i].bitPattern != want[i].bitPattern }) {
            XCTFail("\(what): value \(i) is \(got[i]), the formula gives \(want[i])", file: file, line: line)
        }
    }

    /// Runs `body` once per vector variant this CPU can run (AVX and SSE2 on x86-64), then puts
    /// back the one chosen at start.
    private func forEachVariant(_ body: () -> Void) {
        let chosen = String(cString: rg_kernels_variant())
        defer { _ = rg_kernels_select(chosen == "avx" ? 1 : 0) }
        var ran = 0
        for avx: Int32 in [1, 0] where rg_kernels_select(avx) != 0 {
            body()
            ran += 1
        }
        if ran == 0 { body() }   // not x86-64: the one scalar loop
    }

    func testAdamLoopMatchesTheScalarFormula() { forEachVariant(checkAdam) }
    func testRMSpropLoopMatchesTheScalarFormula() { forEachVariant(checkRMSprop) }

    private func checkAdam() {
        for n in Array(1...41) + [1000, 4099] {
            for wd: Float in [0, 0.01] {
                var p = values(n, seed: 1, scale: 1), m = values(n, seed: 2, scale: 0.01)
                var v = values(n, seed: 3, scale: 0.001).map { $0 * $0 }
                let g = values(n, seed: 4, scale: 0.1)
                var (rp, rm, rv) = (p, m, v)
                let (b1, b2, eps, step, bc): (Float, Float, Float, Float, Float) = (0.5, 0.999, 1e-8, 2e-4 / 0.75, 0.0447)
                for i in 0..<n {
                    var gi = g[i]
                    if wd != 0 { gi += wd * rp[i] }
                    rm[i] += (gi - rm[i]) * (1 - b1)
                    rv[i] = rv[i] * b2 + (1 - b2) * gi * gi
                    let denom = rv[i].squareRoot() / bc + eps
                    rp[i] -= step * (rm[i] / denom)
                }
                rg_adam_step(&p, g, &m, &v, n, 1 - b1, b2, 1 - b2, eps, wd, step, bc)
                assertSameBits(p, rp, "Adam values, n=\(n) wd=\(wd) (\(String(cString: rg_kernels_variant())))")
                assertSameBits(m, rm, "Adam exp_avg, n=\(n) wd=\(wd)")
                assertSameBits(v, rv, "Adam exp_avg_sq, n=\(n) wd=\(wd)")
            }
        }
    }

    private func checkRMSprop() {
        for n in Array(1...41) + [1000, 4099] {
            var p = values(n, seed: 5, scale: 1), s = values(n, seed: 6, scale: 0.01).map { $0 * $0 }
            let g = values(n, seed: 7, scale: 0.1)
            var (rp, rs) = (p, s)
            let (a, eps, lr): (Float, Float, Float) = (0.99, 1e-8, 5e-5)
            for i in 0..<n {
                rs[i] = rs[i] * a + (1 - a) * g[i] * g[i]
                rp[i] -= lr * (g[i] / (rs[i].squareRoot() + eps))
            }
            rg_rmsprop_step(&p, g, &s, n, a, 1 - a, eps, lr)
            assertSameBits(p, rp, "RMSprop values, n=\(n) (\(String(cString: rg_kernels_variant())))")
            assertSameBits(s, rs, "RMSprop square_avg, n=\(n)")
        }
    }

    func testOptimizersGiveTheSameBitsOnOneAndTwoThreads() {
        func run(threads: Int) -> [[UInt32]] {
            ThreadPool.setThreads(threads)
            defer { ThreadPool.setThreads(1) }
            var rng = RandomGenerator(seed: 9)
            let model = Sequential([Linear(300, 200, rng: &rng), LeakyReLU(0.2), Linear(200, 101, rng: &rng)])
            let group = ParameterGroup(model)
            let opts: [Optimizer] = [Adam(group, lr: 1e-3, weightDecay: 0.01), RMSprop(group, lr: 1e-3)]
            let g = group.gradBuffer
            var out: [[UInt32]] = []
            for opt in opts {
                for step in 0..<5 {
                    for i in 0..<g.count { g[i] = Float((i * 7 + step) % 23) * 1e-3 - 0.011 }
                    opt.step()
                }
                out.append(Array(group.valueBuffer).map(\.bitPattern))
            }
            return out
        }
        XCTAssertEqual(run(threads: 1), run(threads: 2))
    }
}
