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
        for ((a, b), e) in zip(zip(g0, g1), params(ema)) {
            for i in 0..<a.count { XCTAssertEqual(e[i], 0.9 * a[i] + 0.1 * b[i], accuracy: 1e-6) }
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
        // Off by default: sampling uses G.
        let plain = GANModels(config: smallConfig(.dcgan, .bce))
        XCTAssertNil(plain.emaGenerator)
        XCTAssertTrue(plain.samplingGenerator === plain.generator)
        var bad = c
        bad.gEMA = 1
        XCTAssertNotNil(bad.validate())
    }

    func testEMAIsSavedInCheckpointsAndResumesBitIdentically() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ringgan-ema-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
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
