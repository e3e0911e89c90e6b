import Foundation
import TestSupport
import XCTest
@testable import Tensors

final class EngineTests: XCTestCase {
    func testRandomGeneratorMatchesTheDocumentedAlgorithm() {
        // Reference values from an independent Python implementation of SplitMix64 seeding,
        // xoshiro256** and the documented uniform/normal transforms.
        var g = RandomGenerator(seed: 42)
        XCTAssertEqual([g.next(), g.next(), g.next()], [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
        var s = RandomGenerator(seed: 42, stream: 7)
        XCTAssertEqual([s.next(), s.next()], [0x00B6_767C_E78F_3BA1, 0x3577_3719_5954_19FE])
        var n = RandomGenerator(seed: 42)
        XCTAssertEqual([n.normal(), n.normal(), n.normal(), n.normal()],
                       [-0.3032630681991577, 0.28846174478530884, 1.3438117504119873, -0.6879751682281494])
        var u = RandomGenerator(seed: 42)
        XCTAssertEqual([u.uniform(), u.uniform(), u.uniform()], [0.08386296033859253, 0.37898021936416626, 0.6800433993339539])
    }

    func testRandomGeneratorStateRoundTrips() {
        var a = RandomGenerator(seed: 5)
        _ = a.normal()   // leaves a spare normal pending
        var b = RandomGenerator(state: a.state, spareNormal: a.spareNormal)
        XCTAssertEqual((0..<10).map { _ in a.normal() }, (0..<10).map { _ in b.normal() })
        var p = RandomGenerator(seed: 1)
        let perm = p.permutation(100)
        XCTAssertEqual(perm.sorted(), Array(0..<100))
        XCTAssertNotEqual(perm, Array(0..<100))
    }

    /// Tensor.randn and Tensor.rand draw in blocks (randn's transforms on the engine's threads):
    /// the same values, bit for bit, and the same generator state afterwards, as one `normal()` /
    /// `uniform(lo, hi)` call per element, for odd and even sizes, a pending spare at the start,
    /// and sizes spanning several blocks.
    func testBulkDrawsEqualOneCallPerElement() {
        ThreadPool.setThreads(3)
        defer { ThreadPool.setThreads(ThreadPool.defaultThreads) }
        for (count, spareFirst) in [(0, false), (1, false), (1, true), (7, true), (8, false), (65_537, true), (200_001, false)] {
            var a = RandomGenerator(seed: 11, stream: UInt64(count))
            if spareFirst { _ = a.normal() }
            var b = a
            let bulk = Tensor.randn([count], generator: &a).toArray()
            let one = (0..<count).map { _ in b.normal() }
            XCTAssertTrue(bulk == one, "randn of \(count) (spare first: \(spareFirst)) differs from normal() per element")
            XCTAssertEqual(a, b, "randn of \(count) left the generator in another state")
            let ub = Tensor.rand([count], -0.3, 0.7, generator: &a).toArray()
            let uo = (0..<count).map { _ in b.uniform(-0.3, 0.7) }
            XCTAssertTrue(ub == uo, "rand of \(count) differs from uniform(lo, hi) per element")
            XCTAssertEqual(a, b)
        }
    }

    func testBackwardAccumulatesIntoLeaves() {
        let x = Tensor(shape: [3], values: [1, 2, 3], requiresGrad: true)
        (x * x).sum().backward()
        XCTAssertEqual(x.grad!.toArray(), [2, 4, 6])
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad!.toArray(), [5, 7, 9])
    }

    func testBackwardWritesIntoAFlatGradientWindow() {
        // Two parameters as windows onto one buffer, their grads as windows onto another.
        let params = TensorStorage(count: 5), grads = TensorStorage(count: 5)
        let a = Tensor(shape: [2], storage: params), b = Tensor(shape: [3], storage: params, offset: 2)
        a.assign(Tensor(shape: [2], values: [1, 2])); b.assign(Tensor(shape: [3], values: [3, 4, 5]))
        a.requiresGrad = true; b.requiresGrad = true
        a.grad = Tensor(shape: [2], storage: grads); b.grad = Tensor(shape: [3], storage: grads, offset: 2)
        a.grad!.buffer.update(repeating: 0); b.grad!.buffer.update(repeating: 0)
        (a.sum() * b.sum()).backward()
        XCTAssertEqual(Array(UnsafeBufferPointer(start: grads.pointer, count: 5)), [12, 12, 3, 3, 3])
    }

    func testNoGradRecordsNothing() {
        let x = Tensor(shape: [2], values: [1, 2], requiresGrad: true)
        let y = withNoGrad { x * 2 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
        XCTAssertTrue(GradMode.isEnabled)
        let z = x * 2
        XCTAssertEqual(z.gradFnName, "mul_scalar")
    }

    func testGradModeIsPerThread() {
        let done = expectation(description: "thread")
        withNoGrad {
            XCTAssertFalse(GradMode.isEnabled)
            Thread.detachNewThread {
                XCTAssertTrue(GradMode.isEnabled)   // another thread keeps its own mode
                done.fulfill()
            }
            wait(for: [done], timeout: 10)
        }
    }

    func testGradOfUnusedInputIsZero() {
        let x = Tensor(shape: [2], values: [1, 2], requiresGrad: true)
        let unused = Tensor(shape: [3], values: [1, 1, 1], requiresGrad: true)
        let g = grad(of: [(x * x).sum()], wrt: [x, unused])
        XCTAssertEqual(g[0].toArray(), [2, 4])
        XCTAssertEqual(g[1].toArray(), [0, 0, 0])
        XCTAssertNil(x.grad, "grad(of:wrt:) must not touch .grad")
    }

    func testGradWithoutCreateGraphIsNotDifferentiable() {
        let x = Tensor(shape: [2], values: [1, 2], requiresGrad: true)
        let g = grad(of: [(x * x * x).sum()], wrt: [x])[0]
        XCTAssertFalse(g.requiresGrad)
        let g2 = grad(of: [(x * x * x).sum()], wrt: [x], createGraph: true)[0]
        XCTAssertTrue(g2.requiresGrad)
        // d/dx sum(3 x^2) = 6 x
        XCTAssertEqual(grad(of: [g2.sum()], wrt: [x])[0].toArray(), [6, 12])
    }

    func testGradWrtIntermediateTensor() {
        let x = Tensor(shape: [2], values: [1, 2], requiresGrad: true)
        let h = x * 3
        let y = (h * h).sum()
        XCTAssertEqual(grad(of: [y], wrt: [h])[0].toArray(), [6, 12])
    }

    func testDiamondGraphSumsBothPaths() {
        let x = Tensor(shape: [1], values: [2], requiresGrad: true)
        let a = x * 3, b = x.exp()
        (a * b + a).sum().backward()
        // d/dx (3x e^x + 3x) = 3 e^x + 3x e^x + 3
        let e = Float(Foundation.exp(2.0))
        XCTAssertEqual(x.grad!.item, 3 * e + 6 * e + 3, accuracy: 1e-4)
    }

    func testReshapeSharesStorage() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let y = x.reshape([3, 2])
        XCTAssertTrue(y.storage === x.storage)
        XCTAssertEqual(x.flatten().shape, [6])
        XCTAssertEqual(x.reshape([-1, 2]).shape, [3, 2])
        XCTAssertEqual(x.t.toArray(), [1, 4, 2, 5, 3, 6])
    }

    func testBroadcastShapes() {
        XCTAssertEqual(Broadcast.shape([3, 1, 5], [4, 1]), [3, 4, 5])
        XCTAssertEqual(Broadcast.shape([], [2, 2]), [2, 2])
        XCTAssertNil(Broadcast.shape([3], [4]))
    }

    func testConvOutputShapesFollowPyTorch() {
        var g = RandomGenerator(seed: 1)
        let z = Tensor.randn([2, 100, 1, 1], generator: &g)
        let w1 = Tensor.randn([100, 64, 4, 4], generator: &g)
        XCTAssertEqual(convTranspose2d(z, w1).shape, [2, 64, 4, 4])
        let w2 = Tensor.randn([64, 32, 4, 4], generator: &g)
        XCTAssertEqual(convTranspose2d(convTranspose2d(z, w1), w2, stride: 2, padding: 1).shape, [2, 32, 8, 8])
        let x = Tensor.randn([2, 1, 28, 28], generator: &g)
        XCTAssertEqual(conv2d(x, Tensor.randn([8, 1, 4, 4], generator: &g), stride: 2, padding: 1).shape, [2, 8, 14, 14])
    }

    func testKernelSelectionPolicy() {
        let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        XCTAssertEqual(BLASRuntime.bestCoreType(flags: avx512), "SkylakeX")
        XCTAssertEqual(BLASRuntime.bestCoreType(flags: avx512.union(["avx512_bf16"])), "Cooperlake")
        XCTAssertEqual(BLASRuntime.bestCoreType(flags: ["avx", "avx2", "fma"]), "Haswell")
        XCTAssertNil(BLASRuntime.bestCoreType(flags: ["sse2"]))
        XCTAssertTrue(BLASRuntime.fallbackCores.contains("Prescott"))
        XCTAssertFalse(BLASRuntime.coreName.isEmpty)
    }

    func testSafetensorsRoundTripAndErrors() throws {
        let dir = URL(fileURLWithPath: try makeTempDir(self))
        let path = dir.appendingPathComponent("a.safetensors").path
        let a = Tensor(shape: [2, 3], values: [1, -2, 3.5, 4, 5, 6]), s = Tensor(7)
        try Safetensors.write([("a", a), ("s", s)], metadata: ["k": "v"], to: path)
        let (t, meta) = try Safetensors.read(path: path)
        XCTAssertEqual(t["a"]!.shape, [2, 3])
        XCTAssertEqual(t["a"]!.toArray(), a.toArray())
        XCTAssertEqual(t["s"]!.shape, [])
        XCTAssertEqual(meta["k"], "v")
        // Truncated: the error names the file and the tensor whose bytes are missing.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.removeLast(4)
        let bad = dir.appendingPathComponent("bad.safetensors").path
        try bytes.write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try Safetensors.read(path: bad)) { e in
            XCTAssertTrue("\(e)".contains("bad.safetensors"), "\(e)")
            XCTAssertTrue("\(e)".contains("outside"), "\(e)")
        }
        // Garbage header length.
        try Data([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2]).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try Safetensors.read(path: bad)) { e in XCTAssertTrue("\(e)".contains("header length"), "\(e)") }
        XCTAssertThrowsError(try Safetensors.read(path: dir.appendingPathComponent("missing").path))
    }
}
