import XCTest
@testable import Tensors

/// `leakyReluInPlace` (PyTorch's `inplace=True`) gives bit for bit the values and the first and
/// second derivatives of the ordinary op, shares its input's storage only where nothing can read
/// the old values, and leaves every other input untouched.
final class InPlaceActivationTests: XCTestCase {
    private func bits(_ t: Tensor) -> [UInt32] { t.toArray().map(\.bitPattern) }

    /// x -> conv -> batch norm -> activation -> conv -> sum of squares: the value, the gradients
    /// of the input and the weights, and (create-graph) the gradient of the input-gradient's
    /// squared norm with respect to the weights, as WGAN-GP's penalty takes it.
    private func run(inplace: Bool, slope: Float) -> (out: [UInt32], grads: [[UInt32]], second: [[UInt32]], shared: Bool) {
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.randn([4, 3, 8, 8], generator: &rng, requiresGrad: true)
        let w1 = Tensor.randn([6, 3, 4, 4], generator: &rng, requiresGrad: true)
        let w2 = Tensor.randn([2, 6, 4, 4], generator: &rng, requiresGrad: true)
        let gamma = Tensor.randn([6], generator: &rng, requiresGrad: true)
        let beta = Tensor.randn([6], generator: &rng, requiresGrad: true)
        func forward() -> (Tensor, Bool) {
            let c = conv2d(x, w1, stride: 2, padding: 1)
            let (b, _) = batchNormTraining(c, weight: gamma, bias: beta, eps: 1e-5)
            let a = inplace ? b.leakyReluInPlace(slope) : (slope == 0 ? b.relu() : b.leakyRelu(slope))
            let shared = a.storage === b.storage
            let y = conv2d(a, w2, stride: 2, padding: 1)
            return ((y * y).sum(), shared)
        }
        let (loss, shared) = forward()
        let g = grad(of: [loss], wrt: [x, w1, w2, gamma, beta])
        let (loss2, _) = forward()
        let gx = grad(of: [loss2], wrt: [x], createGraph: true)[0]
        let penalty = (gx * gx).sum()
        let second = grad(of: [penalty], wrt: [w1, w2, gamma])
        return (bits(loss), g.map(bits), second.map(bits), shared)
    }

    func testSameBitsAsTheOrdinaryOpFirstAndSecondOrder() {
        for slope: Float in [0, 0.2] {
            let plain = run(inplace: false, slope: slope), inplace = run(inplace: true, slope: slope)
            XCTAssertFalse(plain.shared)
            XCTAssertTrue(inplace.shared, "slope \(slope): the activation after batch norm should reuse its storage")
            XCTAssertEqual(plain.out, inplace.out, "slope \(slope): value")
            XCTAssertEqual(plain.grads, inplace.grads, "slope \(slope): first derivatives")
            XCTAssertEqual(plain.second, inplace.second, "slope \(slope): second derivatives")
        }
    }

    func testInputsThatOthersMayReadAreNotOverwritten() {
        var rng = RandomGenerator(seed: 5)
        // A leaf (a user's tensor), with and without grad.
        for requiresGrad in [false, true] {
            let x = Tensor.randn([2, 5], generator: &rng, requiresGrad: requiresGrad)
            let before = bits(x)
            let y = x.leakyReluInPlace(0.2)
            XCTAssertEqual(bits(x), before, "a leaf (requiresGrad \(requiresGrad)) was overwritten")
            XCTAssertFalse(y.storage === x.storage)
        }
        // The output of an op whose backward reads its output (tanh).
        let z = Tensor.randn([2, 5], generator: &rng, requiresGrad: true)
        let t = z.tanh()
        let before = bits(t)
        let y = t.leakyReluInPlace(0.2)
        XCTAssertEqual(bits(t), before, "tanh's output was overwritten")
        XCTAssertFalse(y.storage === t.storage)
        // A negative slope: the derivative cannot be read from the result.
        let w = Tensor.randn([3, 5], generator: &rng, requiresGrad: true)
        let m = matmulT(z, w, transA: false, transB: true)
        let mb = bits(m)
        _ = m.leakyReluInPlace(-0.5)
        XCTAssertEqual(bits(m), mb, "a negative slope overwrote its input")
        // No graph recorded: nothing tells an intermediate from a user's tensor.
        let n = withGradMode(false) { matmulT(z, w, transA: false, transB: true) }
        let nb = bits(n)
        _ = withGradMode(false) { n.leakyReluInPlace(0.2) }
        XCTAssertEqual(bits(n), nb, "an input was overwritten with no graph recorded")
    }
}
