import TestSupport
import XCTest
@testable import Tensors

/// Forward values and gradients against PyTorch 2.13 (fixtures from tools/fixtures/make_fixtures.py).
final class ParityTests: XCTestCase {
    /// Runs `op` on the case's inputs, compares `out`, then the gradients of sum(out * gout).
    func check(_ fx: [String: Tensor], _ c: String, inputs n: Int, grads: Set<Int>? = nil,
               atol: Float = 1e-5, rtol: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line,
               _ op: ([Tensor]) -> Tensor) {
        let ins = (0..<n).map { fx.t("\(c).in\($0)") }
        let want = grads ?? Set(0..<n)
        for i in want { ins[i].requiresGrad = true }
        let out = op(ins)
        assertClose(out, fx.t("\(c).out"), atol: atol, rtol: rtol, "\(c) forward", file: file, line: line)
        let gout = fx.t("\(c).gout")
        let gs = grad(of: [out], wrt: want.sorted().map { ins[$0] }, gradOutputs: [gout.reshape(out.shape)])
        for (k, i) in want.sorted().enumerated() {
            assertClose(gs[k], fx.t("\(c).gin\(i)"), atol: atol, rtol: rtol, "\(c) grad of input \(i)", file: file, line: line)
        }
    }

    func testUnary() {
        let fx = Fixtures.load("ops.safetensors")
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("log", { $0.log() }), ("sqrt", { $0.sqrt() }), ("abs", { $0.abs() }),
            ("neg", { -$0 }), ("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }), ("relu", { $0.relu() }),
            ("leaky_relu", { $0.leakyRelu(0.2) }), ("softplus", { $0.softplus() }), ("logsigmoid", { $0.logSigmoid() }),
            ("pow3", { $0.pow(3) }), ("pow2_5", { $0.pow(2.5) }), ("clamp", { $0.clamp(min: -0.5, max: 0.5) }),
        ]
        for (name, f) in ops { check(fx, name, inputs: 1) { f($0[0]) } }
    }

    func testBroadcastingBinary() {
        let fx = Fixtures.load("ops.safetensors")
        check(fx, "add_bc", inputs: 2) { $0[0] + $0[1] }
        check(fx, "sub_bc", inputs: 2) { $0[0] - $0[1] }
        check(fx, "mul_bc", inputs: 2) { $0[0] * $0[1] }
        check(fx, "div_bc", inputs: 2) { $0[0] / $0[1] }
    }

    func testReductions() {
        let fx = Fixtures.load("ops.safetensors")
        check(fx, "sum_d1", inputs: 1) { $0[0].sum(dim: 1) }
        check(fx, "sum_d02k", inputs: 1) { $0[0].sum(dims: [0, 2], keepDim: true) }
        check(fx, "mean_all", inputs: 1) { $0[0].mean() }
        check(fx, "mean_d023k", inputs: 1) { $0[0].mean(dims: [0, 2, 3], keepDim: true) }
        check(fx, "norm_d1", inputs: 1) { $0[0].norm(dim: 1) }
    }

    func testMatmul() {
        let fx = Fixtures.load("ops.safetensors")
        check(fx, "matmul", inputs: 2, rtol: 2e-4) { matmul($0[0], $0[1]) }
        check(fx, "bmm", inputs: 2, rtol: 2e-4) { matmul($0[0], $0[1]) }
        check(fx, "linear", inputs: 3, rtol: 2e-4) { linear($0[0], $0[1], $0[2]) }
    }

    func testShapeOps() {
        let fx = Fixtures.load("ops.safetensors")
        check(fx, "permute", inputs: 1) { $0[0].permute([0, 2, 3, 1]) }
        check(fx, "transpose", inputs: 1) { $0[0].t }
        check(fx, "cat", inputs: 2) { concat([$0[0], $0[1]], dim: 1) }
        check(fx, "chunk0", inputs: 1) { $0[0].chunk(2, dim: 1)[0] }
        check(fx, "chunk1", inputs: 1) { $0[0].chunk(2, dim: 1)[1] }
        check(fx, "upsample", inputs: 1) { $0[0].upsampleNearest(2) }
        check(fx, "avgpool", inputs: 1) { $0[0].avgPool(2) }
    }

    func testLosses() {
        let fx = Fixtures.load("ops.safetensors")
        check(fx, "bce_logits", inputs: 2, grads: [0]) { bceWithLogits($0[0], target: $0[1]) }
        check(fx, "bce", inputs: 2, grads: [0]) { bce($0[0], target: $0[1]) }
    }

    func testNormPrimitives() {
        let fx = Fixtures.load("ops.safetensors")
        // Batch norm (training) and instance norm, composed from the primitives.
        check(fx, "batchnorm", inputs: 3, atol: 3e-5, rtol: 3e-4) { ins in
            let x = ins[0]
            let mean = x.mean(dims: [0, 2, 3], keepDim: true)
            let variance = x.variance(dims: [0, 2, 3], keepDim: true)
            let xhat = (x - mean) / (variance + 1e-5).sqrt()
            return xhat * ins[1].reshape([1, 3, 1, 1]) + ins[2].reshape([1, 3, 1, 1])
        }
        check(fx, "instancenorm", inputs: 1, atol: 3e-5, rtol: 3e-4) { ins in
            let x = ins[0]
            let mean = x.mean(dims: [2, 3], keepDim: true)
            let variance = x.variance(dims: [2, 3], keepDim: true)
            return (x - mean) / (variance + 1e-5).sqrt()
        }
    }

    func testConvolutions() {
        let fx = Fixtures.load("conv.safetensors")
        check(fx, "conv2d_a", inputs: 2) { conv2d($0[0], $0[1], stride: 2, padding: 1) }
        check(fx, "conv2d_b", inputs: 2) { conv2d($0[0], $0[1], stride: 2, padding: 1) }
        check(fx, "conv2d_c", inputs: 2) { conv2d($0[0], $0[1], stride: 1, padding: 0) }
        check(fx, "conv2d_d", inputs: 3) { conv2d($0[0], $0[1], bias: $0[2], stride: 1, padding: 1) }
        check(fx, "conv2d_dcgan", inputs: 2, atol: 3e-5, rtol: 3e-4) { conv2d($0[0], $0[1], stride: 2, padding: 1) }
        check(fx, "convT_a", inputs: 2) { convTranspose2d($0[0], $0[1], stride: 1, padding: 0) }
        check(fx, "convT_b", inputs: 2) { convTranspose2d($0[0], $0[1], stride: 2, padding: 1) }
        check(fx, "convT_c", inputs: 2) { convTranspose2d($0[0], $0[1], stride: 2, padding: 1) }
        check(fx, "convT_d", inputs: 3) {
            convTranspose2d($0[0], $0[1], bias: $0[2], stride: 2, padding: 1, outputPadding: 1)
        }
        check(fx, "convT_dcgan", inputs: 2, atol: 3e-5, rtol: 3e-4) { convTranspose2d($0[0], $0[1], stride: 2, padding: 1) }
    }

    // MARK: WGAN-GP: the penalty's gradient through double backward, against torch.autograd.grad

    /// The tutorial's gradient_penalty on `critic`, then penalty.backward().
    func penalty(_ critic: (Tensor) -> Tensor, _ xhat: Tensor) -> (gradX: Tensor, penalty: Tensor) {
        let d = critic(xhat)
        let gx = grad(of: [d], wrt: [xhat], gradOutputs: [Tensor.ones(d.shape)], createGraph: true)[0]
        let norms = gx.reshape([xhat.shape[0], -1]).norm(dim: 1)
        let p = (norms - 1).pow(2).mean()
        p.backward()
        return (gx, p)
    }

    func testGradientPenaltyMLP() {
        let fx = Fixtures.load("gp.safetensors")
        let xhat = fx.t("gp_mlp.xhat"), w1 = fx.t("gp_mlp.w1"), b1 = fx.t("gp_mlp.b1"), w2 = fx.t("gp_mlp.w2"), b2 = fx.t("gp_mlp.b2")
        for p in [xhat, w1, b1, w2, b2] { p.requiresGrad = true }
        let (gx, p) = penalty({ linear(linear($0, w1, b1).leakyRelu(0.2), w2, b2) }, xhat)
        assertClose(gx, fx.t("gp_mlp.grad_x"), "gp_mlp grad_x")
        assertClose(p, fx.t("gp_mlp.penalty"), "gp_mlp penalty")
        assertClose(w1.grad!, fx.t("gp_mlp.g_w1"), "gp_mlp d penalty / d w1")
        assertClose(w2.grad!, fx.t("gp_mlp.g_w2"), "gp_mlp d penalty / d w2")
        assertClose(b1.grad ?? Tensor.zeros(b1.shape), fx.t("gp_mlp.g_b1"), "gp_mlp d penalty / d b1")
        assertClose(b2.grad ?? Tensor.zeros(b2.shape), fx.t("gp_mlp.g_b2"), "gp_mlp d penalty / d b2")
        assertClose(xhat.grad ?? Tensor.zeros(xhat.shape), fx.t("gp_mlp.g_xhat"), "gp_mlp d penalty / d xhat")
    }

    func testGradientPenaltyConv() {
        let fx = Fixtures.load("gp.safetensors")
        let xhat = fx.t("gp_conv.xhat"), w1 = fx.t("gp_conv.w1"), w2 = fx.t("gp_conv.w2"), w3 = fx.t("gp_conv.w3")
        for p in [xhat, w1, w2, w3] { p.requiresGrad = true }
        let critic: (Tensor) -> Tensor = { x in
            let h = conv2d(x, w1, stride: 2, padding: 1).leakyRelu(0.2)
            let h2 = conv2d(h, w2, stride: 2, padding: 1).leakyRelu(0.2)
            return conv2d(h2, w3).reshape([-1])
        }
        let (gx, p) = penalty(critic, xhat)
        assertClose(gx, fx.t("gp_conv.grad_x"), "gp_conv grad_x")
        assertClose(p, fx.t("gp_conv.penalty"), "gp_conv penalty")
        assertClose(w1.grad!, fx.t("gp_conv.g_w1"), atol: 3e-5, rtol: 3e-4, "gp_conv d penalty / d w1")
        assertClose(w2.grad!, fx.t("gp_conv.g_w2"), atol: 3e-5, rtol: 3e-4, "gp_conv d penalty / d w2")
        assertClose(w3.grad!, fx.t("gp_conv.g_w3"), atol: 3e-5, rtol: 3e-4, "gp_conv d penalty / d w3")
        assertClose(xhat.grad ?? Tensor.zeros(xhat.shape), fx.t("gp_conv.g_xhat"), "gp_conv d penalty / d xhat")
    }

    func testGradientPenaltySpectralNorm() {
        let fx = Fixtures.load("gp.safetensors")
        let xhat = fx.t("gp_sn.xhat"), w1 = fx.t("gp_sn.w1"), b1 = fx.t("gp_sn.b1"), w2 = fx.t("gp_sn.w2"), b2 = fx.t("gp_sn.b2")
        for p in [xhat, w1, b1, w2, b2] { p.requiresGrad = true }
        // One power iteration, as torch.nn.utils.spectral_norm in a training forward.
        var u = fx.t("gp_sn.u0"), v = Tensor.zeros([w1.shape[1]])
        withNoGrad {
            func normalize(_ t: Tensor) -> Tensor { t / t.norm(dims: [0]).clamp(min: 1e-12) }
            v = normalize(mv(w1.t, u))
            u = normalize(mv(w1, v))
        }
        assertClose(u, fx.t("gp_sn.u1"), "gp_sn u")
        assertClose(v, fx.t("gp_sn.v1"), "gp_sn v")
        let sigma = dot(u, mv(w1, v))
        assertClose(sigma, fx.t("gp_sn.sigma"), "gp_sn sigma")
        let wsn = w1 / sigma
        let (gx, p) = penalty({ linear(linear($0, wsn, b1).leakyRelu(0.2), w2, b2) }, xhat)
        assertClose(gx, fx.t("gp_sn.grad_x"), "gp_sn grad_x")
        assertClose(p, fx.t("gp_sn.penalty"), "gp_sn penalty")
        assertClose(w1.grad!, fx.t("gp_sn.g_w1"), atol: 3e-5, rtol: 3e-4, "gp_sn d penalty / d w1")
        assertClose(w2.grad!, fx.t("gp_sn.g_w2"), atol: 3e-5, rtol: 3e-4, "gp_sn d penalty / d w2")
    }
}
