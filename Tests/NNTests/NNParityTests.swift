import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// The tutorial's models and layers against PyTorch 2.13 (fixtures from
/// tools/fixtures/make_nn_fixtures.py): state_dict names and shapes, training-mode forward,
/// parameter and input gradients, BatchNorm running stats and spectral-norm vectors after the
/// forward, and eval-mode outputs.
final class NNParityTests: XCTestCase {
    lazy var fx = Fixtures.load("nn.safetensors", target: "NNTests")

    /// Tolerance scaled to the expected tensor's magnitude.
    /// `floor` is a magnitude the absolute tolerance scales with at least (a gradient that is zero
    /// in exact arithmetic, like a Linear bias before a training BatchNorm, is rounding noise of
    /// the size of the other gradients times float epsilon).
    func close(_ a: Tensor, _ b: Tensor, _ what: String, rtol: Float = 2e-3, floor: Float = 1e-3,
               file: StaticString = #filePath, line: UInt = #line) {
        let scale = b.toArray().map { Swift.abs($0) }.max() ?? 0
        assertClose(a, b, atol: 1e-5 * max(scale, floor) + 1e-7, rtol: rtol, what, file: file, line: line)
    }

    func check(_ p: String, _ m: Module, forward: (Module, Tensor) -> Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        // The state dict has exactly PyTorch's keys, in PyTorch's order of parameters.
        let sdKeys = fx.keys.filter { $0.hasPrefix(p + ".sd.") }.map { String($0.dropFirst(p.count + 4)) }
        XCTAssertEqual(Set(m.stateDict().map { $0.0 }), Set(sdKeys), "\(p): state_dict keys", file: file, line: line)
        var sd: [String: Tensor] = [:]
        for k in sdKeys { sd[k] = fx.t("\(p).sd.\(k)") }
        try m.loadStateDict(sd)
        // Eval output from the stored state (no batch stats, no power iteration).
        if fx["\(p).out_eval_sd"] != nil {
            m.eval()
            close(withNoGrad { forward(m, fx.t("\(p).in")) }, fx.t("\(p).out_eval_sd"), "\(p) eval output from the stored state",
                  rtol: 5e-3, file: file, line: line)
            m.train()
        }
        let x = fx.t("\(p).in")
        x.requiresGrad = true
        let out = forward(m, x)
        close(out, fx.t("\(p).out"), "\(p) forward", file: file, line: line)
        let params = m.namedParameters()
        let grads = grad(of: [out], wrt: params.map { $0.1 } + [x], gradOutputs: [fx.t("\(p).gout")])
        let gradScale = params.map { fx.t("\(p).grad.\($0.0)").toArray().map { Swift.abs($0) }.max() ?? 0 }.max() ?? 0
        for (i, (name, _)) in params.enumerated() {
            close(grads[i], fx.t("\(p).grad.\(name)"), "\(p) grad \(name)", floor: gradScale, file: file, line: line)
        }
        close(grads.last!, fx.t("\(p).gin"), "\(p) input grad", file: file, line: line)
        for (name, b) in m.namedBuffers() {
            close(b, fx.t("\(p).after.\(name)"), "\(p) buffer \(name) after the forward", file: file, line: line)
        }
        m.eval()
        close(withNoGrad { forward(m, x) }, fx.t("\(p).out_eval"), "\(p) eval output", file: file, line: line)
    }

    func testMLPGenerator() throws {
        var r = RandomGenerator(seed: 1)
        try check("mlp_g", MLPGenerator(rng: &r)) { ($0 as! MLPGenerator).generate($1) }
    }

    func testMLPDiscriminator() throws {
        var r = RandomGenerator(seed: 1)
        try check("mlp_d", MLPDiscriminator(rng: &r)) { $0($1) }
    }

    func testDCGAN64() throws {
        var r = RandomGenerator(seed: 1)
        try check("dcgan_g", DCGANGenerator(latentDim: 16, ngf: 4, nc: 1, imageSize: 64, rng: &r)) { $0($1) }
        try check("dcgan_d", DCGANDiscriminator(nc: 1, ndf: 4, imageSize: 64, rng: &r)) { $0($1) }
    }

    func testDCGAN32() throws {
        var r = RandomGenerator(seed: 1)
        try check("dcgan32_g", DCGANGenerator(latentDim: 16, ngf: 4, nc: 1, imageSize: 32, rng: &r)) { $0($1) }
        try check("dcgan32_d", DCGANDiscriminator(nc: 1, ndf: 4, imageSize: 32, rng: &r)) { $0($1) }
    }

    func testSpectralNormDiscriminator() throws {
        var r = RandomGenerator(seed: 1)
        try check("sn_d", DCGANDiscriminator(nc: 1, ndf: 4, imageSize: 64, spectral: true, rng: &r)) { $0($1) }
    }

    func testMappingNetwork() throws {
        var r = RandomGenerator(seed: 1)
        try check("mapping", MappingNetwork(latentDim: 16, wDim: 16, numLayers: 8, rng: &r)) { $0($1) }
    }

    func testAdaIN() throws {
        var r = RandomGenerator(seed: 1)
        let m = AdaIN(numFeatures: 4, wDim: 6, rng: &r)
        let w = fx.t("adain.in2")
        w.requiresGrad = true
        try check("adain", m) { ($0 as! AdaIN).forward($1, w) }
        // The style input's gradient.
        m.train()
        let x = fx.t("adain.in")
        let out = m.forward(x, w)
        let gw = grad(of: [out], wrt: [w], gradOutputs: [fx.t("adain.gout")])[0]
        close(gw, fx.t("adain.gin2"), "adain style input grad")
    }

    func testOptimizers() {
        func run(_ name: String, _ make: (ParameterGroup) -> Optimizer) -> Optimizer {
            let holder = Module()
            holder.registerParameter("p", fx.t("\(name).p0"))
            let group = ParameterGroup(holder)
            let opt = make(group)
            for k in 1...3 {
                group.gradTensor.assign(fx.t("\(name).g\(k)"))
                opt.step()
                assertClose(group.valueTensor, fx.t("\(name).p\(k)"), atol: 1e-7, rtol: 1e-6, "\(name) after step \(k)")
            }
            return opt
        }
        let adam = run("opt_adam") { Adam($0, lr: 2e-4, betas: (0.5, 0.999)) }
        let st = Dictionary(uniqueKeysWithValues: adam.stateTensors())
        assertClose(st["exp_avg"]!, fx.t("opt_adam.exp_avg"), atol: 1e-7, rtol: 1e-6, "adam exp_avg")
        assertClose(st["exp_avg_sq"]!, fx.t("opt_adam.exp_avg_sq"), atol: 1e-7, rtol: 1e-6, "adam exp_avg_sq")
        _ = run("opt_adam_ttur") { Adam($0, lr: 4e-4, betas: (0, 0.9)) }
        _ = run("opt_rmsprop") { RMSprop($0, lr: 5e-5) }
        _ = run("opt_sgd") { SGD($0, lr: 0.1, momentum: 0.9) }
    }
}
