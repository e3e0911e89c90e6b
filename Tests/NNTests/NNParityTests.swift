import NN
import TestSupport
import XCTest
@testable import Tensors

/// The tutorial's layers and optimizers against PyTorch 2.13 (fixtures from
/// tools/fixtures/make_nn_fixtures.py): state_dict names and shapes, training-mode forward,
/// parameter and input gradients, BatchNorm running stats and spectral-norm vectors after the
/// forward, and eval-mode outputs (`ModuleParity` in TestSupport; the GAN models: GANTests'
/// `ModelParityTests`).
final class NNParityTests: XCTestCase {
    lazy var fx = Fixtures.load("nn.safetensors", target: "NNTests")
    lazy var parity = ModuleParity(fx)

    func check(_ p: String, _ m: Module, forward: (Module, Tensor) -> Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        try parity.check(p, m, forward: forward, file: file, line: line)
    }
    func close(_ a: Tensor, _ b: Tensor, _ what: String) { parity.close(a, b, what) }


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
