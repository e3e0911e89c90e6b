import XCTest
@testable import Tensors

/// `backward()` lets matmul and the convolutions add a leaf's weight gradient straight into its
/// existing `.grad` buffer (a GEMM with beta = 1; `Tensor.directGrad`). These tests give every
/// weight a non-zero gradient first, so a kernel that overwrote the buffer (beta = 0), wrote the
/// transposed product or wrote it twice would fail, and compare with `grad(of:wrt:)`, which never
/// takes the direct path.
final class DirectGradTests: XCTestCase {
    private func randn(_ shape: [Int], _ seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.randn(shape, generator: &rng)
    }

    /// Runs `f(x, w)` both ways: accumulated by backward into a pre-filled grad, and by `grad`.
    private func check(_ name: String, x: Tensor, w: Tensor, _ f: (Tensor, Tensor) -> Tensor,
                       file: StaticString = #filePath, line: UInt = #line) {
        let wLeaf = w.copy(); wLeaf.requiresGrad = true
        let prior = randn(w.shape, 99)
        // A window onto a larger buffer, as a model's flat gradient buffer gives.
        let flat = TensorStorage(count: w.count + 7)
        let window = Tensor(shape: w.shape, storage: flat, offset: 7)
        window.buffer.update(fromContentsOf: prior.buffer)
        wLeaf.grad = window

        let outWeights = randn(f(x, wLeaf).shape, 5)
        (f(x, wLeaf) * outWeights).sum().backward()
        XCTAssertTrue(wLeaf.grad === window, "\(name): the gradient buffer was replaced", file: file, line: line)
        XCTAssertNil(wLeaf.directGrad, "\(name): directGrad left set after backward", file: file, line: line)

        let w2 = w.copy(); w2.requiresGrad = true
        let expected = grad(of: [(f(x, w2) * outWeights).sum()], wrt: [w2])[0]
        let got = wLeaf.grad!.toArray(), want = zip(prior.toArray(), expected.toArray()).map { $0 + $1 }
        var worst: Float = 0
        for (a, b) in zip(got, want) { worst = max(worst, abs(a - b) / max(1, abs(b))) }
        XCTAssertLessThan(worst, 1e-5, "\(name): accumulated gradient differs by \(worst)", file: file, line: line)
        // Twice: the second backward adds on top of the first.
        (f(x, wLeaf) * outWeights).sum().backward()
        let twice = wLeaf.grad!.toArray(), want2 = zip(want, expected.toArray()).map { $0 + $1 }
        worst = 0
        for (a, b) in zip(twice, want2) { worst = max(worst, abs(a - b) / max(1, abs(b))) }
        XCTAssertLessThan(worst, 1e-5, "\(name): second accumulation differs by \(worst)", file: file, line: line)
    }

    func testLinearAndMatmulAccumulateInPlace() {
        let x = randn([6, 5], 1)
        check("linear (W transposed)", x: x, w: randn([4, 5], 2)) { linear($0, $1) }
        check("matmul x @ W", x: x, w: randn([5, 3], 3)) { matmul($0, $1) }
        check("matmul W @ x^T (weight on the left)", x: x, w: randn([2, 6], 4)) { matmul($1, $0) }
    }

    func testConvolutionsAccumulateInPlace() {
        // Several images, so the threaded chunks and their partial sums are exercised.
        let x = randn([9, 3, 8, 8], 6)
        check("conv2d", x: x, w: randn([4, 3, 4, 4], 7)) { conv2d($0, $1, stride: 2, padding: 1) }
        check("conv_transpose2d", x: x, w: randn([3, 2, 4, 4], 8)) { convTranspose2d($0, $1, stride: 2, padding: 1) }
        check("conv2d 1x1 output (fully connected)", x: x, w: randn([5, 3, 8, 8], 9)) { conv2d($0, $1) }
    }

    func testSharedWeightUsedTwice() {
        // One leaf feeding two products: both contributions land in the buffer.
        let x = randn([4, 4], 10)
        check("W used twice", x: x, w: randn([4, 4], 11)) { linear(linear($0, $1), $1) }
    }

    /// A weight used by several shallow products (a discriminator scoring real, then fake
    /// images: K = the batch rows, one GEMM block deep) is accumulated straight into its zeroed
    /// buffer, and the buffer holds bit for bit what the summed path gives (g1 + g2, added into
    /// zero): runs keep their exact numbers. A deeper product keeps the summed path.
    /// A weight used by three products (a discriminator's real, fake and penalty passes) gets
    /// the summed path's bits on whichever GEMM kernel is loaded: straight from the GEMM where
    /// the kernel is proved to add each product once (64 rows is within one k block of every
    /// x86 kernel of OpenBLAS: GEMM_Q is 128 for the generic ones), formed apart and added
    /// where it is not (1000 rows is deeper than the block of the kernels tried here).
    func testWeightUsedByShallowProductsAccumulatesDirectlyWithTheSummedPathsBits() {
        for rows in [64, 128, 129, 256, 300, 1000] {
            let w = randn([130, 300], 20); w.requiresGrad = true
            let flat = TensorStorage(count: w.count + 3)
            let window = Tensor(shape: w.shape, storage: flat, offset: 3)
            window.buffer.update(repeating: 0)
            w.grad = window
            let xs = [randn([rows, 300], 21), randn([rows, 300], 22), randn([rows, 300], 23)]
            let outs = [randn([rows, 130], 24), randn([rows, 130], 25), randn([rows, 130], 26)]
            func loss(_ w: Tensor) -> Tensor {
                let parts = zip(xs, outs).map { (linear($0, w).leakyRelu(0.2) * $1).sum() }
                return parts[0] + parts[1] + parts[2]
            }
            let before = EngineCounters.directProducts.load(ordering: .relaxed)
            loss(w).backward()
            let direct = EngineCounters.directProducts.load(ordering: .relaxed) - before
            // linear's weight gradient is g^T x: transA, m = 130, n = 300, k = rows.
            let proved = gemmAddsProductOnce(true, false, 130, 300, rows)
            if rows == 64 { XCTAssertTrue(proved, "rows 64: \(BLASRuntime.coreName) kernels add a 64-deep product in parts") }
            XCTAssertEqual(direct, proved ? 3 : 0, "rows \(rows): products written straight into the buffer")
            let w2 = w.copy(); w2.requiresGrad = true
            let summed = grad(of: [loss(w2)], wrt: [w2])[0].toArray().map { Float(0) + $0 }
            let got = window.toArray()
            var differing = 0
            for (a, b) in zip(got, summed) where a.bitPattern != b.bitPattern { differing += 1 }
            XCTAssertEqual(differing, 0, "rows \(rows) (\(BLASRuntime.coreName), direct \(proved)): \(differing) of \(got.count) values differ from the summed path's bits")
        }
    }

    /// The probe's answer is what the kernel does: where it says a product is added once, a GEMM
    /// with beta = 1 onto random C gives C + (the product formed with beta = 0) to the bit; where
    /// it says otherwise, the two differ somewhere. Both transposes of the weight gradient, and
    /// depths around every x86 kernel's GEMM_Q (128 to 768).
    func testTheOnePassProbeAgreesWithTheKernel() {
        var deepestOnce = 0
        for (ta, tb) in [(true, false), (false, true)] {
            for k in [2, 64, 127, 128, 129, 200, 256, 257, 320, 321, 384, 385, 512, 768, 769, 1536] {
                let (m, n) = (96, 80)
                let a = randn(ta ? [k, m] : [m, k], UInt64(k)), b = randn(tb ? [n, k] : [k, n], UInt64(k + 1))
                let c0 = randn([m, n], UInt64(k + 2))
                let c = c0.copy()
                sgemm(ta, tb, m, n, k, a.data, a.shape[1], b.data, b.shape[1], c.data, n, beta: 1)
                let p = Tensor.zeros([m, n])
                sgemm(ta, tb, m, n, k, a.data, a.shape[1], b.data, b.shape[1], p.data, n, beta: 0)
                var differing = 0
                for i in 0..<(m * n) where c.data[i].bitPattern != (c0.data[i] + p.data[i]).bitPattern { differing += 1 }
                let once = gemmAddsProductOnce(ta, tb, m, n, k)
                if once {
                    deepestOnce = max(deepestOnce, k)
                    XCTAssertEqual(differing, 0, "k \(k), trans \(ta)/\(tb): the probe says one addition, \(differing) values say otherwise")
                } else {
                    XCTAssertGreaterThan(differing, 0, "k \(k), trans \(ta)/\(tb): the probe says parts, yet every value equals C + P")
                }
            }
        }
        print("one-pass probe: \(BLASRuntime.coreName) kernels add products up to \(deepestOnce) deep in one pass (of those tried)")
        XCTAssertGreaterThanOrEqual(deepestOnce, 128, "\(BLASRuntime.coreName): no x86 kernel has a k block under 128")
    }

    /// `backward(leafReady:)` calls back once per leaf, when the leaf's gradient is final (it
    /// equals the gradient after backward has returned), outputs' leaves before inputs': a
    /// three-layer chain with a weight used twice (summed path) and the others written straight
    /// into their buffers (direct path), with a buffer-backed `.grad` on each.
    func testLeafReadyComesOncePerLeafWithTheFinalGradient() {
        let x = randn([5, 4], 20)
        let ws = [randn([6, 4], 21), randn([6, 6], 22), randn([3, 6], 23)].map { w -> Tensor in
            let l = w.copy(); l.requiresGrad = true
            l.grad = Tensor.zeros(w.shape)
            return l
        }
        var seen: [(Int, [Float])] = []
        let h1 = linear(x, ws[0]).relu()
        let h2 = linear(h1, ws[1]).tanh()
        let out = linear(h2, ws[2]) + linear(linear(h1, ws[1]).relu(), ws[2]) * 0.5   // ws[1], ws[2] used twice
        out.sum().backward(leafReady: { leaf in
            guard let i = ws.firstIndex(where: { $0 === leaf }) else { return XCTFail("a callback for a tensor that is not a leaf weight") }
            seen.append((i, leaf.grad!.toArray()))
        })
        XCTAssertEqual(seen.map { $0.0 }, [2, 1, 0], "once per leaf, later layers first")
        for (i, g) in seen { XCTAssertEqual(g, ws[i].grad!.toArray(), "weight \(i): its gradient changed after its callback") }
        XCTAssertTrue(ws.allSatisfy { $0.grad!.toArray().contains { $0 != 0 } })
    }
}
