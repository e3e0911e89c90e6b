import TestSupport
import XCTest
@testable import Tensors

/// Finite-difference checks of every op's backward (first order) and, for the ops a WGAN-GP
/// critic can contain, of the gradient of the gradient (second order, createGraph).
final class GradCheckTests: XCTestCase {
    // MARK: first order

    func testUnaryFirstOrder() {
        let x = sample([3, 4], margin: 0.15)
        let pos = sample([3, 4], seed: 2, positive: true)
        gradCheck("exp", [x]) { $0[0].exp() }
        gradCheck("log", [pos]) { $0[0].log() }
        gradCheck("sqrt", [pos]) { $0[0].sqrt() }
        gradCheck("pow3", [x]) { $0[0].pow(3) }
        gradCheck("pow2.5", [pos]) { $0[0].pow(2.5) }
        gradCheck("pow-1", [pos]) { $0[0].pow(-1) }
        gradCheck("abs", [x]) { $0[0].abs() }
        gradCheck("neg", [x]) { -$0[0] }
        gradCheck("clamp", [x]) { $0[0].clamp(min: -0.6, max: 0.7) }
        gradCheck("relu", [x]) { $0[0].relu() }
        gradCheck("leaky", [x]) { $0[0].leakyRelu(0.2) }
        gradCheck("tanh", [x]) { $0[0].tanh() }
        gradCheck("sigmoid", [x]) { $0[0].sigmoid() }
        gradCheck("softplus", [x]) { $0[0].softplus() }
        gradCheck("logsigmoid", [x]) { $0[0].logSigmoid() }
        gradCheck("squared", [x]) { $0[0].squared() }
    }

    func testScalarOpsFirstOrder() {
        let x = sample([2, 3], positive: true)
        gradCheck("x+s", [x]) { $0[0] + 1.5 }
        gradCheck("s-x", [x]) { 2 - $0[0] }
        gradCheck("x*s", [x]) { $0[0] * -3 }
        gradCheck("x/s", [x]) { $0[0] / 4 }
        gradCheck("s/x", [x]) { 2 / $0[0] }
    }

    func testBroadcastingFirstOrder() {
        let a = sample([2, 3, 4]), b = sample([3, 1], seed: 3), c = sample([4], seed: 4, positive: true)
        let s = sample([], seed: 5, positive: true)
        gradCheck("add", [a, b]) { $0[0] + $0[1] }
        gradCheck("sub", [b, a]) { $0[0] - $0[1] }
        gradCheck("mul", [a, c]) { $0[0] * $0[1] }
        gradCheck("div", [a, c]) { $0[0] / $0[1] }
        gradCheck("div scalar tensor", [a, s]) { $0[0] / $0[1] }
        gradCheck("mul same", [a]) { $0[0] * $0[0] }
    }

    func testReductionsFirstOrder() {
        let x = sample([2, 3, 4, 5])
        gradCheck("sum all", [x]) { $0[0].sum() }
        gradCheck("sum dims", [x]) { $0[0].sum(dims: [1, 3]) }
        gradCheck("sum keep", [x]) { $0[0].sum(dims: [0, 2], keepDim: true) }
        gradCheck("mean all", [x]) { $0[0].mean() }
        gradCheck("mean dims", [x]) { $0[0].mean(dims: [0, 2, 3], keepDim: true) }
        gradCheck("variance", [x]) { $0[0].variance(dims: [0, 2, 3]) }
        gradCheck("norm", [x]) { $0[0].reshape([2, -1]).norm(dim: 1) }
        gradCheck("expand", [sample([3, 1])]) { $0[0].expand([2, 3, 4]) }
        gradCheck("sumTo", [x]) { $0[0].sumTo([3, 1, 5]) }
    }

    func testMatmulFirstOrder() {
        let a = sample([4, 5]), b = sample([5, 3], seed: 2), w = sample([6, 5], seed: 3), bias = sample([6], seed: 4)
        let ba = sample([2, 4, 5], seed: 5), bb = sample([2, 5, 3], seed: 6)
        gradCheck("mm", [a, b]) { matmul($0[0], $0[1]) }
        gradCheck("bmm", [ba, bb]) { matmul($0[0], $0[1]) }
        gradCheck("bmm shared rhs", [ba, b]) { matmul($0[0], $0[1]) }
        gradCheck("bmm shared lhs", [a, bb]) { matmul($0[0], $0[1]) }
        gradCheck("linear", [a, w, bias]) { linear($0[0], $0[1], $0[2]) }
        gradCheck("linear 3d", [ba, w, bias]) { linear($0[0], $0[1], $0[2]) }
        for (ta, tb) in [(false, true), (true, false), (true, true)] {
            let x = ta ? sample([5, 4], seed: 7) : a, y = tb ? sample([3, 5], seed: 8) : b
            gradCheck("mmT \(ta) \(tb)", [x, y]) { matmulT($0[0], $0[1], transA: ta, transB: tb) }
            let bx = ta ? sample([2, 5, 4], seed: 9) : ba, by = tb ? sample([3, 5], seed: 10) : b
            gradCheck("bmmT shared \(ta) \(tb)", [bx, by]) { matmulT($0[0], $0[1], transA: ta, transB: tb) }
        }
        gradCheck("dot", [sample([5]), sample([5], seed: 2)]) { dot($0[0], $0[1]) }
        gradCheck("mv", [w, sample([5], seed: 2)]) { mv($0[0], $0[1]) }
    }

    func testShapeOpsFirstOrder() {
        let x = sample([2, 3, 4])
        gradCheck("reshape", [x]) { $0[0].reshape([4, -1]) * $0[0].reshape([4, 6]) }
        gradCheck("flatten", [x]) { $0[0].flatten(from: 1) }
        gradCheck("unsqueeze", [x]) { $0[0].unsqueeze(1) }
        gradCheck("permute", [x]) { $0[0].permute([2, 0, 1]) }
        gradCheck("transpose", [x]) { $0[0].transpose(0, 2) }
        gradCheck("narrow", [x]) { $0[0].narrow(2, 1, 2) }
        gradCheck("concat", [x, sample([2, 5, 4], seed: 2)]) { concat([$0[0], $0[1]], dim: 1) }
        gradCheck("chunk", [x]) { ins in let c = ins[0].chunk(2, dim: 2); return c[0] * c[1] }
        gradCheck("split", [x]) { ins in let c = ins[0].split(size: 2, dim: 1); return c[1] }
    }

    func testImageOpsFirstOrder() {
        gradCheck("upsample", [sample([2, 2, 3, 3])]) { $0[0].upsampleNearest(2) }
        gradCheck("upsample3", [sample([1, 2, 2, 3])]) { $0[0].upsampleNearest(3) }
        gradCheck("avgpool", [sample([2, 2, 4, 6])]) { $0[0].avgPool(2) }
        gradCheck("avgpool odd", [sample([1, 2, 5, 5])]) { $0[0].avgPool(2) }
    }

    func testConvFirstOrder() {
        let x = sample([2, 3, 6, 6]), w = sample([4, 3, 3, 3], seed: 2, scale: 0.5), b = sample([4], seed: 3)
        gradCheck("conv s1 p1", [x, w, b]) { conv2d($0[0], $0[1], bias: $0[2], stride: 1, padding: 1) }
        gradCheck("conv s2 p1 k4", [x, sample([5, 3, 4, 4], seed: 4, scale: 0.5)]) { conv2d($0[0], $0[1], stride: 2, padding: 1) }
        gradCheck("conv s3 p0 k2", [sample([1, 2, 7, 8]), sample([3, 2, 2, 2], seed: 5)]) { conv2d($0[0], $0[1], stride: 3) }
        // A batch large enough to use several images per GEMM chunk.
        gradCheck("conv batch", [sample([5, 2, 4, 4]), sample([3, 2, 3, 3], seed: 6)]) { conv2d($0[0], $0[1], padding: 1) }
        let y = sample([2, 4, 3, 3]), wt = sample([4, 3, 4, 4], seed: 7, scale: 0.5), bt = sample([3], seed: 8)
        gradCheck("convT s2 p1", [y, wt, bt]) { convTranspose2d($0[0], $0[1], bias: $0[2], stride: 2, padding: 1) }
        gradCheck("convT s1 p0 1x1", [sample([2, 5, 1, 1]), sample([5, 3, 4, 4], seed: 9)]) { convTranspose2d($0[0], $0[1]) }
        gradCheck("convT outpad", [sample([1, 2, 3, 3]), sample([2, 2, 3, 3], seed: 10)]) {
            convTranspose2d($0[0], $0[1], stride: 2, padding: 1, outputPadding: 1)
        }
        gradCheck("conv weight grad op", [sample([2, 3, 5, 5]), sample([2, 4, 3, 3], seed: 11)]) { ins in
            let g = ConvGeometry(n: 2, cin: 3, h: 5, w: 5, cout: 4, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, ho: 3, wo: 3)
            return convWGradOp(ins[0], ins[1], g)
        }
    }

    func testLossesFirstOrder() {
        let logits = sample([6, 1]), t = Tensor(shape: [6, 1], values: [1, 0, 0.9, 0.7, 1, 0])
        gradCheck("bceWithLogits", [logits]) { bceWithLogits($0[0], target: t) }
        let p = Tensor(shape: [6, 1], values: [0.2, 0.5, 0.7, 0.9, 0.35, 0.6], requiresGrad: true)
        gradCheck("bce", [p], eps: 1e-3) { bce($0[0], target: t) }
    }

    // MARK: second order (gradients of gradients)

    func testSecondOrderElementwise() {
        let x = sample([3, 4], margin: 0.15), b = sample([4], seed: 2, positive: true)
        let pos = sample([3, 4], seed: 3, positive: true)
        gradGradCheck("mul", [x, b]) { $0[0] * $0[1] * $0[0] }
        gradGradCheck("add", [x, b]) { ($0[0] + $0[1]).pow(3) }
        gradGradCheck("sub", [x, b]) { ($0[0] - $0[1]).pow(2) }
        gradGradCheck("div", [x, b]) { $0[0] * $0[0] / $0[1] }
        gradGradCheck("pow", [pos]) { $0[0].pow(2.5) }
        gradGradCheck("sqrt", [pos]) { $0[0].sqrt() }
        gradGradCheck("leaky", [x, b]) { ($0[0] * $0[1]).leakyRelu(0.2) * $0[1] }
        gradGradCheck("relu", [x, b]) { ($0[0] * $0[1]).relu() * $0[0] }
        gradGradCheck("tanh", [x]) { $0[0].tanh() }
        gradGradCheck("sigmoid", [x]) { $0[0].sigmoid() }
        gradGradCheck("exp", [x]) { $0[0].exp() }
        gradGradCheck("log", [pos]) { $0[0].log() }
        gradGradCheck("softplus", [x]) { $0[0].softplus() }
        gradGradCheck("scalar ops", [pos]) { (2 / $0[0]) * 3 + (1 - $0[0]).pow(3) }
    }

    func testSecondOrderReductionsAndShapes() {
        let x = sample([2, 3, 4]), w = sample([12, 2], seed: 2)
        gradGradCheck("sum", [x]) { $0[0].pow(3).sum(dims: [1]) }
        gradGradCheck("mean", [x]) { ($0[0] * $0[0]).mean(dims: [0, 2], keepDim: true) }
        gradGradCheck("reshape+flatten+matmul", [x, w]) { matmul($0[0].flatten(from: 1), $0[1]).pow(2) }
        gradGradCheck("norm", [x]) { $0[0].reshape([2, -1]).norm(dim: 1) }
        gradGradCheck("permute", [x]) { $0[0].permute([1, 0, 2]).pow(3) }
    }

    func testSecondOrderLinearCritic() {
        // The WGAN-GP shape: input, linear, leaky relu, linear; differentiate the input gradient
        // with respect to the input and every parameter.
        let x = sample([4, 5]), w1 = sample([6, 5], seed: 2), b1 = sample([6], seed: 3)
        let w2 = sample([1, 6], seed: 4), b2 = sample([1], seed: 5)
        gradGradCheck("mlp critic", [x, w1, b1, w2, b2]) { linear(linear($0[0], $0[1], $0[2]).tanh(), $0[3], $0[4]) }
        // LeakyReLU is piecewise linear: a central difference whose step carries a pre-activation
        // across the kink measures a slope no derivative has, and which pre-activations lie
        // within a step of it depends on the GEMM kernel's rounding. So the leaky layer's bias
        // keeps every pre-activation at least 0.3 from zero (a step of 1e-2 moves one by at
        // most 0.01 x the largest |x| or |w| here, under 0.05).
        let b1Clear = biasClearOfKink(x: x, w: w1, b: b1, margin: 0.3)
        gradGradCheck("mlp leaky critic", [x, w1, b1Clear, w2, b2]) {
            linear(linear($0[0], $0[1], $0[2]).leakyRelu(0.2), $0[3], $0[4]).pow(2)
        }
    }

    /// `b` shifted per unit, by the smallest multiple of `margin` that does it, so that every
    /// pre-activation x w^T + b (in double precision) is at least `margin` from zero.
    private func biasClearOfKink(x: Tensor, w: Tensor, b: Tensor, margin: Double) -> Tensor {
        let (rows, inputs, units) = (x.shape[0], x.shape[1], w.shape[0])
        func preactivation(_ i: Int, _ j: Int, bias: Float) -> Double {
            var z = Double(bias)
            for c in 0..<inputs { z += Double(x.data[i * inputs + c]) * Double(w.data[j * inputs + c]) }
            return z
        }
        let out = b.copy(); out.requiresGrad = true
        for j in 0..<units {
            let z: [Double] = (0..<rows).map { preactivation($0, j, bias: b.data[j]) }
            var shift = 0.0
            for s in 0..<40 {
                let d = Double((s + 1) / 2) * margin * (s % 2 == 0 ? 1.0 : -1.0)
                if z.allSatisfy({ Swift.abs($0 + d) >= margin }) { shift = d; break }
            }
            out.data[j] = Float(Double(b.data[j]) + shift)
            for i in 0..<rows {
                let clear = Swift.abs(preactivation(i, j, bias: out.data[j])) >= margin * 0.99
                precondition(clear, "unit \(j): no shift keeps the pre-activations clear of the kink")
            }
        }
        return out
    }

    func testSecondOrderConvCritic() {
        let x = sample([2, 2, 6, 6]), w1 = sample([3, 2, 4, 4], seed: 2, scale: 0.5), w2 = sample([1, 3, 3, 3], seed: 3, scale: 0.5)
        gradGradCheck("conv critic", [x, w1, w2], eps: 3e-3) {
            conv2d(conv2d($0[0], $0[1], stride: 2, padding: 1).tanh(), $0[2]).pow(2)
        }
        let y = sample([2, 3, 2, 2]), wt = sample([3, 2, 4, 4], seed: 4, scale: 0.5)
        gradGradCheck("convT", [y, wt]) { convTranspose2d($0[0], $0[1], stride: 2, padding: 1).tanh() }
    }

    func testSecondOrderSpectralNormDivision() {
        // W / sigma(W) with sigma = u^T W v and u, v held fixed (as spectral_norm does).
        let x = sample([3, 4]), w = sample([5, 4], seed: 2)
        let u = sample([5], seed: 3, requiresGrad: false), v = sample([4], seed: 4, requiresGrad: false)
        gradGradCheck("sn division", [x, w]) { ins in
            let sigma = dot(u, mv(ins[1], v))
            return linear(ins[0], ins[1] / sigma).tanh()
        }
    }

    func testSecondOrderBCE() {
        gradGradCheck("bce logits", [sample([6, 1])]) { ins in
            bceWithLogits(ins[0], target: Tensor(shape: [6, 1], values: [1, 0, 0.9, 0.7, 1, 0]))
        }
    }

    // MARK: the fused batch norm

    func testBatchNormFirstAndSecondOrder() {
        // Odd sizes so the 8-lane loops have tails; the second output term keeps the loss from
        // being invariant (sum of a normalised output has zero gradient).
        let x = sample([3, 2, 3, 3]), w = sample([2], seed: 2, positive: true), b = sample([2], seed: 3)
        let probe = sample([3, 2, 3, 3], seed: 4, requiresGrad: false)
        gradCheck("batch norm", [x, w, b], eps: 3e-3) { batchNormTraining($0[0], weight: $0[1], bias: $0[2], eps: 1e-5).0 * probe }
        gradCheck("batch norm 1d", [sample([5, 3], seed: 5), sample([3], seed: 6, positive: true), sample([3], seed: 7)], eps: 3e-3) {
            batchNormTraining($0[0], weight: $0[1], bias: $0[2], eps: 1e-5).0.pow(3)
        }
        // The WGAN-GP path: the input gradient of a critic with batch norm, differentiated again.
        gradGradCheck("batch norm critic", [x, w, b], eps: 3e-3) {
            (batchNormTraining($0[0], weight: $0[1], bias: $0[2], eps: 1e-5).0 * probe).tanh()
        }
    }

    func testBatchNormMatchesComposedOps() {
        // Against the composition it replaced: statistics, output and all three gradients.
        let x = sample([16, 8, 9, 9], seed: 11), w = sample([8], seed: 12, positive: true), b = sample([8], seed: 13)
        let g = sample([16, 8, 9, 9], seed: 14, requiresGrad: false)
        let (y, stats) = batchNormTraining(x, weight: w, bias: b, eps: 1e-5)
        (y * g).sum().backward()
        let fused = [y.toArray(), x.grad!.toArray(), w.grad!.toArray(), b.grad!.toArray()]
        let x2 = x.detach(), w2 = w.detach(), b2 = b.detach()
        for t in [x2, w2, b2] { t.requiresGrad = true }
        let mean = x2.mean(dims: [0, 2, 3], keepDim: true), v = x2.variance(dims: [0, 2, 3], keepDim: true)
        let y2 = (x2 - mean) / (v + 1e-5).sqrt() * w2.reshape([1, 8, 1, 1]) + b2.reshape([1, 8, 1, 1])
        (y2 * g).sum().backward()
        let composed = [y2.toArray(), x2.grad!.toArray(), w2.grad!.toArray(), b2.grad!.toArray()]
        for (k, name) in ["y", "dx", "dw", "db"].enumerated() {
            for (a, e) in zip(fused[k], composed[k]) { XCTAssertEqual(a, e, accuracy: 2e-4 * max(1, abs(e)), name) }
        }
        for (a, e) in zip(stats.mean, mean.toArray()) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        for (a, e) in zip(stats.variance, v.toArray()) { XCTAssertEqual(a, e, accuracy: 1e-4) }
        XCTAssertEqual(stats.count, 16 * 81)
    }
}
