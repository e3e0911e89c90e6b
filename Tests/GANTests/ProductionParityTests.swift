import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// The classes and functions training runs (GAN's gradientPenalty, NN's BatchNorm,
/// InstanceNorm2d, spectralNorm) against the PyTorch fixtures that Tests/TensorsTests checks the
/// primitives with (tools/fixtures/make_fixtures.py: ops.safetensors, gp.safetensors).
final class ProductionParityTests: XCTestCase {
    lazy var ops = Fixtures.load("ops.safetensors", target: "TensorsTests")
    lazy var gp = Fixtures.load("gp.safetensors", target: "TensorsTests")

    /// `nn.BatchNorm2d(3)` in training mode (F.batch_norm with batch statistics), its input,
    /// weight and bias gradients, and the running statistics it leaves (momentum 0.1, unbiased
    /// variance), computed here in double precision from the input.
    func testBatchNormClass() {
        let x = ops.t("batchnorm.in0"), w = ops.t("batchnorm.in1"), b = ops.t("batchnorm.in2")
        let bn = BatchNorm(3)
        bn.parameter("weight").assign(w)
        bn.parameter("bias").assign(b)
        x.requiresGrad = true
        let out = bn(x)
        assertClose(out, ops.t("batchnorm.out"), atol: 3e-5, rtol: 3e-4, "BatchNorm forward")
        let g = grad(of: [out], wrt: [x, bn.parameter("weight"), bn.parameter("bias")], gradOutputs: [ops.t("batchnorm.gout")])
        assertClose(g[0], ops.t("batchnorm.gin0"), atol: 3e-5, rtol: 3e-4, "BatchNorm input grad")
        assertClose(g[1], ops.t("batchnorm.gin1"), atol: 3e-5, rtol: 3e-4, "BatchNorm weight grad")
        assertClose(g[2], ops.t("batchnorm.gin2"), atol: 3e-5, rtol: 3e-4, "BatchNorm bias grad")
        let v = x.toArray().map(Double.init)
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        for ch in 0..<c {
            var vals: [Double] = []
            for i in 0..<n { for k in 0..<hw { vals.append(v[(i * c + ch) * hw + k]) } }
            let m = vals.reduce(0, +) / Double(vals.count)
            let unbiased = vals.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(vals.count - 1)
            XCTAssertEqual(Double(bn.buffer("running_mean").toArray()[ch]), 0.1 * m, accuracy: 1e-6, "running_mean[\(ch)]")
            XCTAssertEqual(Double(bn.buffer("running_var").toArray()[ch]), 0.9 + 0.1 * unbiased, accuracy: 1e-5, "running_var[\(ch)]")
        }
        XCTAssertEqual(bn.buffer("num_batches_tracked").item, 1)
        // Eval mode uses the running statistics.
        bn.eval()
        let e = withNoGrad { bn(x) }
        let rm = bn.buffer("running_mean").toArray(), rv = bn.buffer("running_var").toArray()
        let xe = x.toArray(), we = w.toArray(), be = b.toArray(), ev = e.toArray()
        for i in 0..<xe.count {
            let ch = (i / hw) % c
            XCTAssertEqual(ev[i], (xe[i] - rm[ch]) / (rv[ch] + 1e-5).squareRoot() * we[ch] + be[ch], accuracy: 1e-5)
        }
    }

    /// `nn.InstanceNorm2d(3)` (no affine, no running statistics) as F.instance_norm.
    func testInstanceNormClass() {
        let x = ops.t("instancenorm.in0")
        x.requiresGrad = true
        let m = InstanceNorm2d(3)
        let out = m(x)
        assertClose(out, ops.t("instancenorm.out"), atol: 3e-5, rtol: 3e-4, "InstanceNorm2d forward")
        let g = grad(of: [out], wrt: [x], gradOutputs: [ops.t("instancenorm.gout")])[0]
        assertClose(g, ops.t("instancenorm.gin0"), atol: 3e-5, rtol: 3e-4, "InstanceNorm2d input grad")
        XCTAssertTrue(m.stateDict().isEmpty, "InstanceNorm2d has no parameters or buffers by default")
        m.eval()
        assertClose(withNoGrad { m(x) }, ops.t("instancenorm.out"), atol: 3e-5, rtol: 3e-4, "InstanceNorm2d eval (instance statistics)")
        // Its first and second derivatives against central differences (the second is what a
        // penalty through it needs).
        var rng = RandomGenerator(seed: 21)
        let small = Tensor.randn([2, 3, 3, 3], generator: &rng)
        small.requiresGrad = true
        gradCheck("instancenorm", [small]) { m($0[0]) }
        gradGradCheck("instancenorm", [small]) { m($0[0]).squared() }
    }

    /// Linear layers with the fixture's weights.
    func linear(_ w: Tensor, _ b: Tensor) -> Linear {
        var rng = RandomGenerator(seed: 0)
        let l = Linear(w.shape[1], w.shape[0], rng: &rng)
        l.parameter("weight").assign(w)
        l.parameter("bias").assign(b)
        return l
    }

    /// The trainer's `gradientPenalty` (x_hat = alpha real + (1 - alpha) fake, double backward)
    /// on a critic of real layers: penalty, and its gradients with respect to the parameters.
    func testGradientPenaltyFunction() {
        let xhat = gp.t("gp_mlp.xhat")
        let l1 = linear(gp.t("gp_mlp.w1"), gp.t("gp_mlp.b1")), l2 = linear(gp.t("gp_mlp.w2"), gp.t("gp_mlp.b2"))
        let critic: (Tensor) -> Tensor = { l2(l1($0).leakyRelu(0.2)) }
        // x_hat from two other tensors: alpha * real + (1 - alpha) * fake == xhat.
        var rng = RandomGenerator(seed: 3)
        let alpha = Tensor.rand([4, 1], 0.2, 0.8, generator: &rng)
        let fake = Tensor.randn([4, 6], generator: &rng)
        let real = (xhat - (1 - alpha) * fake) / alpha
        let p = gradientPenalty(critic: critic, real: real, fake: fake, alpha: alpha)
        assertClose(p, gp.t("gp_mlp.penalty"), atol: 1e-5, rtol: 1e-4, "gradientPenalty value")
        p.backward()
        assertClose(l1.parameter("weight").grad!, gp.t("gp_mlp.g_w1"), atol: 2e-5, rtol: 2e-4, "d penalty / d w1")
        assertClose(l1.parameter("bias").grad ?? Tensor.zeros([5]), gp.t("gp_mlp.g_b1"), atol: 1e-6, rtol: 1e-4, "d penalty / d b1 (zero: it only moves the kinks)")
        assertClose(l2.parameter("weight").grad!, gp.t("gp_mlp.g_w2"), atol: 2e-5, rtol: 2e-4, "d penalty / d w2")
        assertClose(l2.parameter("bias").grad ?? Tensor.zeros([1]), gp.t("gp_mlp.g_b2"), atol: 1e-6, rtol: 1e-4, "d penalty / d b2")
    }

    /// `torch.nn.utils.spectral_norm(nn.Linear(6, 5))` in a training forward: one power iteration
    /// from the stored u (u, v and sigma as PyTorch's), then the gradient penalty through the
    /// normalised weight, differentiated with respect to weight_orig.
    func testSpectralNormLayerUnderGradientPenalty() {
        var rng = RandomGenerator(seed: 0)
        let l1 = spectralNorm(Linear(6, 5, rng: &rng), rng: &rng)
        l1.parameter("weight_orig").assign(gp.t("gp_sn.w1"))
        l1.parameter("bias").assign(gp.t("gp_sn.b1"))
        l1.buffer("weight_u").assign(gp.t("gp_sn.u0"))
        let l2 = linear(gp.t("gp_sn.w2"), gp.t("gp_sn.b2"))
        let xhat = gp.t("gp_sn.xhat")
        let p = gradientPenalty(critic: { l2(l1($0).leakyRelu(0.2)) }, real: xhat, fake: Tensor.zeros(xhat.shape),
                                alpha: Tensor.ones([4, 1]))
        assertClose(l1.buffer("weight_u"), gp.t("gp_sn.u1"), "spectral norm u after the forward")
        assertClose(l1.buffer("weight_v"), gp.t("gp_sn.v1"), "spectral norm v after the forward")
        let sigma = dot(l1.buffer("weight_u"), mv(gp.t("gp_sn.w1"), l1.buffer("weight_v")))
        assertClose(sigma, gp.t("gp_sn.sigma"), "sigma")
        assertClose(p, gp.t("gp_sn.penalty"), atol: 1e-5, rtol: 1e-4, "penalty through the spectral-norm layer")
        p.backward()
        assertClose(l1.parameter("weight_orig").grad!, gp.t("gp_sn.g_w1"), atol: 3e-5, rtol: 3e-4, "d penalty / d weight_orig")
        assertClose(l2.parameter("weight").grad!, gp.t("gp_sn.g_w2"), atol: 3e-5, rtol: 3e-4, "d penalty / d w2")
        // Eval mode: no power iteration, the stored u and v.
        l1.eval()
        let u = l1.buffer("weight_u").toArray()
        _ = withNoGrad { l1(xhat) }
        XCTAssertEqual(l1.buffer("weight_u").toArray(), u, "eval mode ran a power iteration")
    }
}
