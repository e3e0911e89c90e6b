import Datasets
import Foundation
import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors


func smallConfig(_ model: ModelKind, _ loss: LossKind, progressive: Bool = false) -> GANConfig {
    var c = GANConfig()
    c.model = model
    c.loss = loss
    c.imageSize = model == .mlp ? 28 : 16
    c.ngf = 8; c.ndf = 8; c.latentDim = 12; c.wDim = 16; c.mappingLayers = 3
    c.batchSize = 8; c.steps = 6; c.seed = 11
    c.progressive = progressive
    c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: true)
    c.nCritic = loss == .wgan || loss == .wganGP ? 2 : 1
    return c
}

final class TrainingTests: XCTestCase {
    /// Every model and loss trains: finite losses that move, parameters that change, images of
    /// the right shape in [-1, 1].
    func testEveryModelAndLossTrains() throws {
        let data = blobs(48)
        var cases: [GANConfig] = []
        for loss in LossKind.allCases { cases.append(smallConfig(.dcgan, loss)) }
        for model in [ModelKind.mlp, .sndcgan, .stylegan] { cases.append(smallConfig(model, .bce)) }
        cases.append(smallConfig(.sndcgan, .hinge))
        cases.append(smallConfig(.stylegan, .wganGP))
        cases.append(smallConfig(.dcgan, .bce, progressive: true))
        cases.append(smallConfig(.sndcgan, .hinge, progressive: true))
        var smooth = smallConfig(.dcgan, .bce); smooth.labelSmoothing = 0.9; cases.append(smooth)
        var noisy = smallConfig(.mlp, .bce); noisy.noisyLabels = true; cases.append(noisy)
        var ttur = smallConfig(.dcgan, .hinge); ttur.lrD = 4e-4; ttur.lrG = 1e-4; ttur.beta1 = 0; ttur.beta2 = 0.9; cases.append(ttur)
        for c in cases {
            let name = "\(c.model.rawValue)\(c.progressive ? "+progressive" : "")/\(c.loss.rawValue)"
            XCTAssertNil(c.validate(), name)
            let models = GANModels(config: c)
            let trainer = try GANTrainer(models: models, dataset: data)
            let g0 = models.gParams.valueTensor.copy(), d0 = models.dParams.valueTensor.copy()
            var ms: [StepMetrics] = []
            for _ in 0..<c.steps { ms.append(try trainer.trainStep()) }
            for m in ms {
                XCTAssertTrue(m.dLoss.isFinite && m.gLoss.isFinite, "\(name): non-finite loss \(m)")
            }
            XCTAssertNotEqual(ms.first!.dLoss, ms.last!.dLoss, "\(name): D loss did not move")
            XCTAssertNotEqual(ms.first!.gLoss, ms.last!.gLoss, "\(name): G loss did not move")
            XCTAssertNotEqual(models.gParams.valueTensor.toArray(), g0.toArray(), "\(name): G did not change")
            XCTAssertNotEqual(models.dParams.valueTensor.toArray(), d0.toArray(), "\(name): D did not change")
            let img = models.sample(latents(seed: 1, step: 0, indices: [0, 1, 2], dim: c.latentDim))
            let side = c.progressive ? ms.last!.resolution : c.imageSize
            XCTAssertEqual(img.shape, [3, 1, side, side], name)
            XCTAssertTrue(img.toArray().allSatisfy { $0.isFinite && $0 >= -1 && $0 <= 1 }, "\(name): images outside [-1, 1]")
            if c.loss == .wganGP { XCTAssertGreaterThan(ms.last!.gradientPenalty, 0, name) }
            if c.loss == .wgan {
                XCTAssertLessThanOrEqual(models.dParams.valueTensor.toArray().map { Swift.abs($0) }.max()!, c.clip + 1e-7, "clipping")
            }
        }
    }

    func testProgressiveRunReachesFullResolution() throws {
        var c = smallConfig(.dcgan, .bce, progressive: true)
        c.steps = 10   // 5 phases of 2 steps at 16x16 (levels 0...2)
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
        let res = try (0..<c.steps).map { _ in try trainer.trainStep() }.map { $0.resolution }
        XCTAssertEqual(res, [4, 4, 8, 8, 8, 8, 16, 16, 16, 16])
    }

    /// A config the data cannot feed is a `TrainingDataError` naming the flag and what fits,
    /// before a step runs: a batch larger than the data set, images with other channels (issue
    /// 26: both died of a trapped precondition, in the sampler and in conv2d).
    func testAConfigTheDataCannotFeedThrows() throws {
        var c = smallConfig(.dcgan, .bce)
        c.batchSize = 49
        XCTAssertThrowsError(try GANTrainer(models: GANModels(config: c), dataset: blobs(48))) { e in
            XCTAssertEqual((e as? TrainingDataError).map { "\($0)".contains("--batch 49") && "\($0)".contains("1...48") }, true, "\(e)")
        }
        c.batchSize = 8
        c.nc = 3
        XCTAssertThrowsError(try GANTrainer(models: GANModels(config: c), dataset: blobs(48))) { e in
            XCTAssertEqual((e as? TrainingDataError).map { "\($0)".contains("--nc 3") }, true, "\(e)")
        }
        c.nc = 1
        XCTAssertNoThrow(try c.checkFits(blobs(48)))
    }

    func testStyleMixingCrossover() {
        var rng = RandomGenerator(seed: 1)
        let g = StyleGenerator(latentDim: 8, wDim: 8, mappingLayers: 2, ngf: 4, nc: 1, imageSize: 16, rng: &rng)
        g.eval()
        let z1 = latents(seed: 1, step: 0, indices: [0, 1], dim: 8), z2 = latents(seed: 1, step: 1, indices: [0, 1], dim: 8)
        withNoGrad {
            XCTAssertEqual(g.mix(z1, z2, crossover: g.numLayers).toArray(), g.generate(z1).toArray())
            XCTAssertEqual(g.mix(z1, z2, crossover: 0).toArray(), g.generate(z2).toArray())
            let m = g.mix(z1, z2, crossover: 1).toArray()
            XCTAssertNotEqual(m, g.generate(z1).toArray())
            XCTAssertNotEqual(m, g.generate(z2).toArray())
        }
        XCTAssertEqual(Set(g.stateDict().map { $0.0 }).contains("synthesis.input.weight"), true)
        XCTAssertTrue(g.stateDict().contains { $0.0 == "mapping.mapping.0.weight" })
        XCTAssertTrue(g.stateDict().contains { $0.0 == "synthesis.blocks.0.adain.style.weight" })
    }

    /// Training 3 steps, checkpointing to disk, restoring into fresh models and training 3 more
    /// gives bit-identical parameters, buffers, optimizer state and metrics to 6 uninterrupted steps.
    /// `logEvery` K: metrics lines at every K-th step and the last; gradient norms measured only
    /// for those steps (zero in the others' metrics), and the same training either way.
    func testLogEveryMeasuresGradNormsOnlyWhenLogged() throws {
        let dir = try makeTempDir(self)
        var c = smallConfig(.mlp, .bce)
        c.steps = 5
        var runs: [[StepMetrics]] = []
        for k in [1, 2] {
            let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
            let session = try TrainingSession(trainer: trainer, folder: RunFolder(path: dir + "/k\(k)"), sampleEvery: 0, checkpointEvery: 0)
            session.logEvery = k
            var seen: [StepMetrics] = []
            try session.run { seen.append($0) }
            runs.append(seen)
            let lines = try String(contentsOfFile: dir + "/k\(k)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            let steps = lines.map { (try! JSONSerialization.jsonObject(with: Foundation.Data($0.utf8)) as! [String: Any])["step"] as! Int }
            XCTAssertEqual(steps, k == 1 ? [1, 2, 3, 4, 5] : [2, 4, 5])
            for (i, m) in seen.enumerated() {
                let logged = k == 1 || (i + 1) % k == 0 || i + 1 == c.steps
                XCTAssertEqual(m.gGradNorm > 0 && m.dGradNorm > 0, logged, "k \(k) step \(i + 1)")
            }
        }
        XCTAssertEqual(runs[0].map { $0.dLoss }, runs[1].map { $0.dLoss })
        XCTAssertEqual(runs[0].map { $0.gLoss }, runs[1].map { $0.gLoss })
    }

    func testResumeIsBitIdentical() throws {
        let dir = try makeTempDir(self)
        let data = blobs(48)
        for c in [smallConfig(.dcgan, .bce), smallConfig(.sndcgan, .wganGP), smallConfig(.stylegan, .hinge),
                  smallConfig(.dcgan, .bce, progressive: true)] {
            let name = "\(c.model.rawValue)/\(c.loss.rawValue)"
            let straight = try GANTrainer(models: GANModels(config: c), dataset: data)
            let all = try (0..<6).map { _ in try straight.trainStep() }
            let first = try GANTrainer(models: GANModels(config: c), dataset: data)
            for _ in 0..<3 { try first.trainStep() }
            let store = CheckpointStore(directory: dir + "/" + c.model.rawValue + c.loss.rawValue)
            let path = try store.save(Checkpoint(trainer: first))
            let ckpt = try Checkpoint.read(path: path)
            let resumed = try GANTrainer(models: GANModels(config: ckpt.config), dataset: data)
            try TrainingSession.resume(resumed, from: ckpt, path: path)
            XCTAssertEqual(resumed.step, 3)
            let rest = try (0..<3).map { _ in try resumed.trainStep() }
            XCTAssertTrue(rest == Array(all[3...]), "\(name): metrics after resume differ: \(rest) vs \(Array(all[3...]))")
            let a = Checkpoint(trainer: straight), b = Checkpoint(trainer: resumed)
            XCTAssertEqual(a.tensors.map { $0.name }, b.tensors.map { $0.name })
            for (x, y) in zip(a.tensors, b.tensors) {
                let (u, v) = (x.tensor.toArray(), y.tensor.toArray())
                let first = zip(u, v).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                XCTAssertTrue(u == v, "\(name): \(x.name) differs after resume (first at element \(first ?? -1))")
            }
        }
    }

    func testCheckpointRefusesCorruptAndForeignFiles() throws {
        let dir = try makeTempDir(self)
        let c = smallConfig(.dcgan, .bce)
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
        try trainer.trainStep()
        let good = dir + "/good.rgan"
        try Checkpoint(trainer: trainer).write(to: good)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        func expectError(_ data: Data, _ needle: String, _ what: String) throws {
            let p = dir + "/bad.rgan"
            try data.write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try Checkpoint.read(path: p), what) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(what): \(e)")
                XCTAssertTrue("\(e)".contains("bad.rgan"), "\(what): the error names the file: \(e)")
            }
        }
        var flipped = bytes
        flipped[flipped.count / 2] ^= 0x40
        try expectError(flipped, "checksum mismatch", "a flipped byte")
        try expectError(bytes.prefix(bytes.count - 100), "checksum mismatch", "a truncated file")
        try expectError(PNG.encodeForTest(), "not a RingGAN checkpoint", "a PNG")
        try expectError(Data(), "not a RingGAN checkpoint", "an empty file")
        bytes[8] = 99   // version
        try expectError(bytes, "version 99", "a future version")
        // A checkpoint of another architecture does not load into these models.
        var other = c
        other.ngf = 16
        let ck = try Checkpoint.read(path: good)
        XCTAssertThrowsError(try ck.restore(into: GANModels(config: other), path: good)) { e in
            XCTAssertTrue("\(e)".contains("shape"), "\(e)")
        }
        // Keeps only the newest K.
        let store = CheckpointStore(directory: dir + "/keep", keep: 2)
        for _ in 0..<3 { try trainer.trainStep(); _ = try store.save(Checkpoint(trainer: trainer)) }
        XCTAssertEqual(store.list().map { URL(fileURLWithPath: $0).lastPathComponent }, ["step_00000003.rgan", "step_00000004.rgan"])
    }
}

import Telemetry
extension PNG {
    static func encodeForTest() -> Data { PNG.encode(width: 2, height: 2, channels: 1, pixels: [0, 255, 255, 0]) }
}
