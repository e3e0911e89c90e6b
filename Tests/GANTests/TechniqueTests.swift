import Datasets
import Foundation
@testable import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// What training runs but nothing checked before: initialisations, progressive fade-in,
/// interpolation, label smoothing / noisy labels, TTUR, style-mixing regularisation.
final class TechniqueTests: XCTestCase {
    func maxAbs(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.toArray(), b.toArray()).reduce(0) { Swift.max($0, Swift.abs($1.0 - $1.1)) }
    }

    // MARK: initialisation

    func stats(_ v: [Float]) -> (mean: Double, std: Double, min: Float, max: Float) {
        let n = Double(v.count)
        let m = v.reduce(0.0) { $0 + Double($1) } / n
        let s = (v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / n).squareRoot()
        return (m, s, v.min()!, v.max()!)
    }

    /// The tutorial's `_init_weights` on the real DCGAN classes: conv and transposed-conv weights
    /// N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0.
    func testDCGANInit() {
        var rng = RandomGenerator(seed: 17)
        let g = DCGANGenerator(latentDim: 100, ngf: 64, nc: 1, imageSize: 64, rng: &rng)
        let d = DCGANDiscriminator(nc: 1, ndf: 64, imageSize: 64, rng: &rng)
        for (name, model) in [("G", g as Module), ("D", d as Module)] {
            var convW: [Float] = [], bnW: [Float] = [], bnB: [Float] = []
            var convs = 0, bns = 0
            for m in model.modules() {
                if m is Conv2d || m is ConvTranspose2d {
                    convs += 1
                    let w = m.parameter("weight").toArray()
                    convW += w
                    let s = stats(w)
                    // Each layer on its own too (the smallest has 1,024 weights: std within ~10%).
                    XCTAssertEqual(s.std, 0.02, accuracy: 0.002 + 0.1 * 0.02, "\(name): a conv layer's weight std")
                    XCTAssertFalse(m.hasParameter("bias"), "\(name): the tutorial's convs have no bias")
                } else if let bn = m as? BatchNorm {
                    bns += 1
                    bnW += bn.parameter("weight").toArray()
                    bnB += bn.parameter("bias").toArray()
                }
            }
            XCTAssertEqual(convs, 5, name)
            XCTAssertEqual(bns, name == "G" ? 4 : 3, name)
            let c = stats(convW), w = stats(bnW)
            XCTAssertEqual(c.mean, 0, accuracy: 4 * 0.02 / Double(convW.count).squareRoot(), "\(name): conv weight mean")
            XCTAssertEqual(c.std, 0.02, accuracy: 0.0005, "\(name): conv weight std")
            XCTAssertEqual(w.mean, 1, accuracy: 4 * 0.02 / Double(bnW.count).squareRoot(), "\(name): BatchNorm weight mean")
            XCTAssertEqual(w.std, 0.02, accuracy: 0.0025, "\(name): BatchNorm weight std")
            XCTAssertEqual(bnB, Array(repeating: 0, count: bnB.count), "\(name): BatchNorm bias")
        }
    }

    /// PyTorch's default init of Linear, Conv2d and ConvTranspose2d (kaiming_uniform with
    /// a = sqrt(5)): weight and bias uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in from
    /// weight dim 1 onwards (for ConvTranspose2d, out_channels * k * k). The spectral-norm
    /// discriminator keeps it (the tutorial's SNDiscriminator has no _init_weights).
    func testDefaultInitBounds() {
        var rng = RandomGenerator(seed: 4)
        let cases: [(String, WeightedModule, Int)] = [
            ("Linear(100, 300)", Linear(100, 300, rng: &rng), 100),
            ("Conv2d(16, 32, 3)", Conv2d(16, 32, kernelSize: 3, rng: &rng), 16 * 9),
            ("ConvTranspose2d(16, 8, 4)", ConvTranspose2d(16, 8, kernelSize: 4, rng: &rng), 8 * 16),
            ("ConvTranspose2d(8, 64, 4)", ConvTranspose2d(8, 64, kernelSize: 4, rng: &rng), 64 * 16),
        ]
        for (name, m, fanIn) in cases {
            let bound = 1 / Float(fanIn).squareRoot()
            for (p, v) in [("weight", m.parameter("weight").toArray()), ("bias", m.parameter("bias").toArray())] {
                let s = stats(v)
                XCTAssertLessThanOrEqual(s.max, bound, "\(name).\(p)")
                XCTAssertGreaterThanOrEqual(s.min, -bound, "\(name).\(p)")
                if v.count >= 1000 {
                    XCTAssertGreaterThan(s.max, 0.99 * bound, "\(name).\(p): does not reach its bound")
                    XCTAssertLessThan(s.min, -0.99 * bound, "\(name).\(p): does not reach its bound")
                    XCTAssertEqual(s.std, Double(bound) / 3.0.squareRoot(), accuracy: 0.05 * Double(bound), "\(name).\(p): not uniform")
                }
            }
        }
        let sn = DCGANDiscriminator(nc: 1, ndf: 16, imageSize: 32, spectral: true, rng: &rng)
        let w = sn.main.layers[2].parameter("weight_orig").toArray()   // Conv2d(16, 32, 4): fan_in 256
        XCTAssertLessThanOrEqual(stats(w).max, 1 / 16)
        XCTAssertGreaterThan(stats(w).max, 0.99 / 16)
    }

    // MARK: progressive growing

    /// During a fade-in, alpha = 0 is the previous resolution's output upsampled (G) / the
    /// previous fromRGB on the pooled image (D), and alpha = 1 is the new block alone.
    func testProgressiveFadeInEndpoints() {
        var rng = RandomGenerator(seed: 8)
        let g = ProgressiveGenerator(latentDim: 10, ngf: 8, nc: 1, imageSize: 16, rng: &rng)
        let d = ProgressiveDiscriminator(nc: 1, ndf: 8, imageSize: 16, rng: &rng)
        g.eval(); d.eval()
        let z = Tensor.randn([3, 10], generator: &rng)
        withNoGrad {
            for level in 1...2 {
                g.growth = GrowthState(level: level - 1, alpha: 1)
                let lower = g.generate(z)
                g.growth = GrowthState(level: level, alpha: 0)
                assertClose(g.generate(z), lower.upsampleNearest(2), atol: 1e-6, rtol: 1e-5, "G level \(level), alpha 0")
                g.growth = GrowthState(level: level, alpha: 1)
                var h = g.blocks[0](z.reshape([3, 10, 1, 1]))
                for l in 1...level { h = g.blocks[l](h) }
                let newBlock = g.toRGB[level](h).tanh()
                assertClose(g.generate(z), newBlock, atol: 1e-6, rtol: 1e-5, "G level \(level), alpha 1")
                g.growth = GrowthState(level: level, alpha: 0.5)
                let mid = g.generate(z)
                XCTAssertGreaterThan(maxAbs(mid, newBlock), 1e-4, "G level \(level): alpha 0.5 is not a blend")

                let side = 4 << level
                let x = Tensor.randn([3, 1, side, side], generator: &rng)
                d.growth = GrowthState(level: level - 1, alpha: 1)
                let lowerD = d.score(x.avgPool(2))
                d.growth = GrowthState(level: level, alpha: 0)
                assertClose(d.score(x), lowerD, atol: 1e-5, rtol: 1e-4, "D level \(level), alpha 0")
                d.growth = GrowthState(level: level, alpha: 1)
                var hd = d.blocks[level](d.fromRGB[level](x))
                for l in stride(from: level - 1, through: 1, by: -1) { hd = d.blocks[l](hd) }
                assertClose(d.score(x), d.final(hd).reshape([-1, 1]), atol: 1e-5, rtol: 1e-4, "D level \(level), alpha 1")
            }
        }
    }

    // MARK: interpolation

    func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    func testLerpAndSlerp() {
        var rng = RandomGenerator(seed: 2)
        let a = Tensor.randn([64], generator: &rng).toArray(), b = Tensor.randn([64], generator: &rng).toArray()
        for f in [lerp, slerp] {
            XCTAssertEqual(f(a, b, 0), a)
            for (x, y) in zip(f(a, b, 1), b) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        }
        for (x, y) in zip(lerp(a, b, 0.25), zip(a, b)) { XCTAssertEqual(x, 0.75 * y.0 + 0.25 * y.1, accuracy: 1e-6) }
        // Unit vectors stay on the sphere, and the angle to a grows linearly in t.
        let ua = a.map { Float(Double($0) / norm(a)) }, ub = b.map { Float(Double($0) / norm(b)) }
        let omega = acos(zip(ua, ub).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
        for t in stride(from: Float(0), through: 1, by: 0.125) {
            let s = slerp(ua, ub, t)
            XCTAssertEqual(norm(s), 1, accuracy: 1e-5, "slerp t \(t) leaves the sphere")
            let angle = acos(min(1, zip(ua, s).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }))
            XCTAssertEqual(angle, Double(t) * omega, accuracy: 1e-3, "slerp t \(t): angle")
        }
        XCTAssertLessThan(norm(lerp(ua, ub, 0.5)), 0.95, "lerp cuts inside the sphere (the reason for slerp)")
        // (Nearly) parallel vectors: 0/0 in the formula; the fallback is lerp, finite.
        let near = ua.enumerated().map { $0.offset == 0 ? $0.element + 1e-7 : $0.element }
        for v in [ua, near, ua.map { 2 * $0 }] {
            let s = slerp(ua, v, 0.3)
            XCTAssertTrue(s.allSatisfy { $0.isFinite }, "slerp of parallel vectors is not finite")
            for (x, y) in zip(s, lerp(ua, v, 0.3)) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        }
        XCTAssertEqual(slerp([0, 0], [1, 0], 0.5), [0.5, 0])
    }

    // MARK: label smoothing, noisy labels, TTUR

    /// Replays the first D step of an mlp run (the same batch, latents and models) and returns
    /// the D loss for real targets `target` (nil: the noisy labels the trainer draws).
    func replayDLoss(_ c: GANConfig, data: ImageDataset, target: Tensor) throws -> Float {
        let models = GANModels(config: c)
        var sampler = try EpochSampler(count: data.count, batchSize: c.batchSize, seed: c.seed)
        let idx = sampler.next()
        let real = batch(data, indices: idx, size: 28)
        let positions = Array(0..<idx.count)
        let z = latents(seed: c.seed, step: 0, iteration: 0, indices: positions, dim: c.latentDim)
        models.generator.train()
        let fake = withNoGrad { models.generator.generate(z) }
        return c.loss.loss.discriminatorLoss(models.discriminator.score(real), models.discriminator.score(fake), target).item
    }

    func testLabelSmoothingAndNoisyLabelsAreTheTargetsTheDStepUses() throws {
        let data = blobs(48)
        var c = smallConfig(.mlp, .bce)
        c.labelSmoothing = 0.9
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: data)
        let targets = trainer.realTargets(Array(0..<c.batchSize), iteration: 0)
        XCTAssertEqual(targets.toArray(), Array(repeating: 0.9, count: c.batchSize))
        let m = try trainer.trainStep()
        let ones = Tensor.ones([c.batchSize, 1])
        XCTAssertEqual(m.dLoss, try replayDLoss(c, data: data, target: Tensor.full([c.batchSize, 1], 0.9)), accuracy: 1e-5)
        XCTAssertGreaterThan(try Swift.abs(m.dLoss - replayDLoss(c, data: data, target: ones)), 1e-3, "the D step used targets 1")

        var n = smallConfig(.mlp, .bce)
        n.noisyLabels = true
        let nt = try GANTrainer(models: GANModels(config: n), dataset: data)
        let noisy = nt.realTargets(Array(0..<n.batchSize), iteration: 0).toArray()
        XCTAssertTrue(noisy.allSatisfy { $0 >= 0.7 && $0 <= 1.0 }, "\(noisy)")
        XCTAssertGreaterThan(Set(noisy).count, n.batchSize / 2, "noisy labels are not drawn per sample")
        // Over many draws: uniform on [0.7, 1.0] (mean 0.85, std 0.3 / sqrt(12)).
        let many = nt.realTargets(Array(0..<4000), iteration: 0).toArray()
        XCTAssertEqual(stats(many).mean, 0.85, accuracy: 0.005)
        XCTAssertEqual(stats(many).std, 0.3 / 12.0.squareRoot(), accuracy: 0.004)
        XCTAssertGreaterThan(stats(many).max, 0.995)
        XCTAssertLessThan(stats(many).min, 0.705)
        let nm = try nt.trainStep()
        XCTAssertEqual(nm.dLoss, try replayDLoss(n, data: data, target: Tensor(shape: [n.batchSize, 1], values: noisy)), accuracy: 1e-5)
        XCTAssertGreaterThan(try Swift.abs(nm.dLoss - replayDLoss(n, data: data, target: ones)), 1e-3, "the D step used targets 1")

        // Both at once is refused (which would win is not obvious), naming both flags.
        var both = smallConfig(.mlp, .bce)
        both.labelSmoothing = 0.9
        both.noisyLabels = true
        let problem = both.validate()
        XCTAssertNotNil(problem)
        XCTAssertTrue(problem?.contains("--label-smoothing") == true && problem?.contains("--noisy-labels") == true, problem ?? "")
    }

    /// Two time-scale update rule: D's and G's optimizers each get their own learning rate and
    /// betas, and a step moves each network by its own rate.
    func testTTUROptimizers() throws {
        var c = smallConfig(.dcgan, .hinge)
        c.lrD = 4e-4; c.lrG = 1e-4; c.beta1 = 0; c.beta2 = 0.9
        let models = GANModels(config: c)
        let d = try XCTUnwrap(models.optD as? Adam), g = try XCTUnwrap(models.optG as? Adam)
        XCTAssertEqual(d.learningRate, 4e-4)
        XCTAssertEqual(g.learningRate, 1e-4)
        XCTAssertEqual([d.beta1, d.beta2, g.beta1, g.beta2], [0, 0.9, 0, 0.9])
        // Adam's first step moves every parameter with a non-zero gradient by lr (sign of the gradient).
        let g0 = models.gParams.valueTensor.copy(), d0 = models.dParams.valueTensor.copy()
        let trainer = try GANTrainer(models: models, dataset: blobs(48))
        try trainer.trainStep()
        let dMax = maxAbs(models.dParams.valueTensor, d0), gMax = maxAbs(models.gParams.valueTensor, g0)
        XCTAssertEqual(dMax, 4e-4, accuracy: 1e-6)
        XCTAssertEqual(gMax, 1e-4, accuracy: 1e-6)
        var w = smallConfig(.dcgan, .wgan)
        w.lrD = 3e-5; w.lrG = 7e-5
        let wm = GANModels(config: w)
        XCTAssertEqual((wm.optD as? RMSprop)?.learningRate, 3e-5)
        XCTAssertEqual((wm.optG as? RMSprop)?.learningRate, 7e-5)
    }

    // MARK: style mixing regularisation

    /// With style-mixing probability 1, every training step's fakes are mixes of two latents at
    /// the crossover the trainer draws; with 0, plain generations of the first latent.
    func testStyleMixingRegularisationIsApplied() throws {
        var c = smallConfig(.stylegan, .bce)
        c.styleMixingProb = 1
        let models = GANModels(config: c)
        let sg = models.generator as! StyleGenerator
        let trainer = try GANTrainer(models: models, dataset: blobs(48))
        let positions = Array(0..<c.batchSize)
        let z = latents(seed: c.seed, step: 0, iteration: 0, indices: positions, dim: c.latentDim)
        let z2 = latents(seed: c.seed, .latent2, step: 0, iteration: 0, indices: positions, dim: c.latentDim)
        sg.eval()
        withNoGrad {
            let used = trainer.generate(z, positions: positions, iteration: 0)
            let plain = sg.generate(z)
            XCTAssertGreaterThan(maxAbs(used, plain), 1e-3, "probability 1: the fakes are not mixed")
            // It is one of the crossovers 1..<numLayers, and equals that mix exactly.
            let matches = (1..<sg.numLayers).filter { k in maxAbs(used, sg.mix(z, z2, crossover: k)) < 1e-6 }
            XCTAssertEqual(matches.count, 1, "the fakes are not mix(z, z2, k) for a single k")
        }
        var off = c
        off.styleMixingProb = 0
        let m0 = GANModels(config: off)
        let t0 = try GANTrainer(models: m0, dataset: blobs(48))
        m0.generator.eval()
        withNoGrad {
            XCTAssertEqual(t0.generate(z, positions: positions, iteration: 0).toArray(), m0.generator.generate(z).toArray())
        }
    }
}
