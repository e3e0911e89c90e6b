import Foundation
import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// `--g-ema DECAY`: the moving average of G's weights that sampling, evaluation, grids and
/// export use, saved in checkpoints.
final class EMATests: XCTestCase {
    func values(_ m: Module) -> [[Float]] { m.stateDict().map { $0.1.toArray() } }
    func params(_ m: Module) -> [[Float]] { m.namedParameters().map { $0.1.toArray() } }

    func testEMAFollowsGAndIsWhatSamplingUses() throws {
        var c = smallConfig(.dcgan, .bce)
        c.gEMA = 0.9
        XCTAssertNil(c.validate())
        let models = GANModels(config: c)
        let ema = try XCTUnwrap(models.emaGenerator)
        XCTAssertEqual(values(ema), values(models.generator), "the average starts at G's weights")
        let g0 = params(models.generator)
        let trainer = try GANTrainer(models: models, dataset: blobs(48))
        try trainer.trainStep()
        let g1 = params(models.generator)
        // The first update's decay is ramped down (min(0.9, 2/11)): the average moves most of the
        // way to G at once instead of holding the initial weights.
        let d1 = GANModels.emaDecay(0.9, step: 1)
        XCTAssertEqual(d1, 2.0 / 11.0, accuracy: 1e-7)
        for ((a, b), e) in zip(zip(g0, g1), params(ema)) {
            for i in 0..<a.count { XCTAssertEqual(e[i], d1 * a[i] + (1 - d1) * b[i], accuracy: 1e-6) }
        }
        XCTAssertEqual(ema.namedBuffers().map { $0.1.toArray() }, models.generator.namedBuffers().map { $0.1.toArray() },
                       "BatchNorm statistics copied from G")
        try trainer.trainStep()
        let z = latents(seed: 2, .fixedNoise, step: 0, indices: Array(0..<4), dim: c.latentDim)
        let fromEMA = withNoGrad { ema.generate(z) }
        XCTAssertEqual(models.sample(z).toArray(), fromEMA.toArray())
        models.generator.eval()
        let fromG = withNoGrad { models.generator.generate(z) }
        models.generator.train()
        XCTAssertNotEqual(fromG.toArray(), fromEMA.toArray(), "sampling uses G, not its average")
        XCTAssertTrue(models.samplingGenerator === ema)
        // --raw-generator: the same checkpoint samples from G.
        models.samplesFromAverage = false
        XCTAssertTrue(models.samplingGenerator === models.generator)
        XCTAssertEqual(models.sample(z).toArray(), fromG.toArray())
        models.samplesFromAverage = true
        // Off by default: sampling uses G.
        let plain = GANModels(config: smallConfig(.dcgan, .bce))
        XCTAssertNil(plain.emaGenerator)
        XCTAssertTrue(plain.samplingGenerator === plain.generator)
        var bad = c
        bad.gEMA = 1
        XCTAssertNotNil(bad.validate())
    }

    /// The ramp: the configured decay is reached only once (1 + step) / (10 + step) exceeds it
    /// (step 8,991 for 0.999); before that the average follows G more closely, so a short run's
    /// grid is not the untrained generator's grey.
    func testEMADecayRampsUpToTheConfiguredValue() {
        XCTAssertEqual(GANModels.emaDecay(0.999, step: 1), 2.0 / 11.0, accuracy: 1e-7)
        XCTAssertEqual(GANModels.emaDecay(0.999, step: 90), 91.0 / 100.0, accuracy: 1e-7)
        XCTAssertEqual(GANModels.emaDecay(0.999, step: 20_000), 0.999)
        XCTAssertEqual(GANModels.emaDecay(0.5, step: 20), 0.5)
        var prev: Float = 0
        for s in 1...10_000 { let d = GANModels.emaDecay(0.999, step: s); XCTAssertGreaterThanOrEqual(d, prev); prev = d }
        // What is left of the initial weights after 200 steps at 0.999: with the ramp almost
        // nothing, without it e^-0.2.
        var left: Double = 1
        for s in 1...200 { left *= Double(GANModels.emaDecay(0.999, step: s)) }
        XCTAssertLessThan(left, 1e-3)
        XCTAssertGreaterThan(pow(0.999, 200), 0.8)
    }

    func testEMAIsSavedInCheckpointsAndResumesBitIdentically() throws {
        let dir = try makeTempDir(self)
        var c = smallConfig(.dcgan, .bce)
        c.gEMA = 0.8
        let data = blobs(48)
        let straight = try GANTrainer(models: GANModels(config: c), dataset: data)
        for _ in 0..<6 { try straight.trainStep() }
        let first = try GANTrainer(models: GANModels(config: c), dataset: data)
        for _ in 0..<3 { try first.trainStep() }
        let saved = Checkpoint(trainer: first)
        XCTAssertTrue(saved.tensors.contains { $0.name.hasPrefix("G_ema.") })
        let path = try CheckpointStore(directory: dir).save(saved)
        let ckpt = try Checkpoint.read(path: path)
        let resumed = try GANTrainer(models: GANModels(config: ckpt.config), dataset: data)
        try TrainingSession.resume(resumed, from: ckpt, path: path)
        XCTAssertEqual(values(resumed.models.emaGenerator!), values(first.models.emaGenerator!))
        for _ in 0..<3 { try resumed.trainStep() }
        XCTAssertEqual(values(resumed.models.emaGenerator!), values(straight.models.emaGenerator!))
        XCTAssertNotEqual(values(resumed.models.emaGenerator!), values(resumed.models.generator))
        // A checkpoint without the average (as gan import writes): it starts at G's weights.
        let noEMA = Checkpoint(config: c, step: 3, sampler: saved.sampler, tensors: saved.tensors.filter { !$0.name.hasPrefix("G_ema.") })
        let m = GANModels(config: c)
        try noEMA.restore(into: m)
        XCTAssertEqual(values(m.emaGenerator!), values(m.generator))
    }
}
