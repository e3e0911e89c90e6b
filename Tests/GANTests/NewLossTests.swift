import Foundation
import GAN
import NN
import TestSupport
import XCTest
import Tensors

/// Counts calls from the loss's closures (which are `@Sendable`).
final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func hit(_ k: String) { lock.lock(); counts[k, default: 0] += 1; lock.unlock() }
    subscript(_ k: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[k, default: 0] }
    func reset() { lock.lock(); counts = [:]; lock.unlock() }
}

/// A loss added outside the GAN module, in this file only: the least-squares GAN (Mao et al.
/// 2017), D: ((D(x) - 1)^2 + D(G(z))^2) / 2, G: (D(G(z)) - 1)^2 / 2, with its own defaults and an
/// extra metric. Nothing in Sources names it: the trainer, config, session and metrics only ask it.
enum LSGAN {
    static let calls = CallCounter()
    static let kind: LossKind = GANLoss.register(GANLoss(
        name: "lsgan-test", about: "least squares (a test's loss)",
        defaults: GANLoss.Defaults(lr: 1e-4, betas: (0.5, 0.99), nCritic: 2),
        extraMetrics: [StepMetrics.Extra(key: "d_gap", tag: "lsgan/gap") { $0.dReal - $0.dFake }],
        discriminatorLoss: { real, fake, _ in
            calls.hit("d")
            return ((real - 1).pow(2).mean() + fake.pow(2).mean()) * 0.5
        },
        generatorLoss: { fake in
            calls.hit("g")
            return (fake - 1).pow(2).mean() * 0.5
        }))
}

final class NewLossTests: XCTestCase {
    func config() -> GANConfig {
        var c = GANConfig()
        c.model = .dcgan
        c.loss = LSGAN.kind
        c.imageSize = 16
        c.ngf = 8; c.ndf = 8; c.latentDim = 12
        c.batchSize = 8; c.steps = 4; c.seed = 5
        c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: false)
        return c
    }

    func testALossAddedInOnePlaceTrains() throws {
        let c = config()
        // Its defaults, applied where no flag was given.
        XCTAssertEqual(c.lrG, 1e-4); XCTAssertEqual(c.lrD, 1e-4)
        XCTAssertEqual(c.beta1, 0.5); XCTAssertEqual(c.beta2, 0.99)
        XCTAssertEqual(c.nCritic, 2)
        XCTAssertNil(c.validate())
        XCTAssertTrue(LossKind.allCases.contains(LSGAN.kind))
        XCTAssertEqual(LossKind(rawValue: "lsgan-test"), LSGAN.kind)

        let dir = try makeTempDir(self)
        let models = GANModels(config: c)
        XCTAssertTrue(models.optD is Adam && models.optG is Adam)
        let trainer = try GANTrainer(models: models, dataset: blobs(48))
        let session = try TrainingSession(trainer: trainer, folder: RunFolder(path: dir + "/run"), sampleEvery: 0, checkpointEvery: 0)
        LSGAN.calls.reset()
        var seen: [StepMetrics] = []
        try session.run { seen.append($0) }
        // The trainer used its formulas: n_critic D losses and one G loss per step.
        XCTAssertEqual(LSGAN.calls["d"], c.steps * c.nCritic)
        XCTAssertEqual(LSGAN.calls["g"], c.steps)
        XCTAssertEqual(seen.map { $0.step }, [1, 2, 3, 4])
        for m in seen {
            XCTAssertTrue(m.dLoss.isFinite && m.gLoss.isFinite && m.dLoss >= 0 && m.gLoss >= 0, "\(m)")
            XCTAssertEqual(m.gradientPenalty, 0)
        }
        XCTAssertNotEqual(seen.first!.dLoss, seen.last!.dLoss)
        // Raw scores (no sigmoid): the D loss of the last critic iteration bounds them.
        // ((a - 1)^2 + b^2) / 2 >= ((mean a - 1)^2 + (mean b)^2) / 2 by Jensen.
        for m in seen {
            XCTAssertGreaterThanOrEqual(m.dLoss + 1e-5, ((m.dReal - 1) * (m.dReal - 1) + m.dFake * m.dFake) / 2, "\(m)")
        }
        // Its extra metric is shown and logged.
        let last = seen.last!
        XCTAssertTrue(last.progressFields(c).contains { $0.0 == "d_gap" })
        XCTAssertEqual(last.scalars(c).first { $0.0 == "lsgan/gap" }?.1, last.dReal - last.dFake)
        // The metrics.jsonl / --json line: step first, numbers as JSON numbers, the same values.
        let line = last.jsonLine(["images_per_sec": 12.5])
        XCTAssertTrue(line.hasPrefix("{\"step\":4,"), line)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual((o["d_loss"] as? NSNumber)?.floatValue, last.dLoss, line)
        XCTAssertEqual((o["images_per_sec"] as? NSNumber)?.doubleValue, 12.5, line)
        XCTAssertEqual(try JSONDecoder().decode(StepMetrics.self, from: Data(line.utf8)), last)

        // Stored by its name, and read back: the checkpoint resumes into the same loss.
        let ckptPath = try session.writeCheckpoint()
        let configJSON = try String(contentsOfFile: dir + "/run/config.json", encoding: .utf8)
        XCTAssertTrue(configJSON.contains("\"loss\" : \"lsgan-test\""), configJSON)
        let ckpt = try Checkpoint.read(path: ckptPath)
        XCTAssertEqual(ckpt.config.loss, LSGAN.kind)
        let resumed = try GANTrainer(models: GANModels(config: ckpt.config), dataset: blobs(48))
        try TrainingSession.resume(resumed, from: ckpt, path: ckptPath)
        XCTAssertEqual(resumed.models.dParams.valueTensor.toArray(), models.dParams.valueTensor.toArray())
    }

    func testItsPoliciesAreAsked() throws {
        // Label smoothing needs a loss with real targets: LSGAN declares none.
        var c = config()
        c.labelSmoothing = 0.9
        XCTAssertNotNil(c.validate())
        // A name nobody registered does not decode.
        var json = String(decoding: try JSONEncoder().encode(config()), as: UTF8.self)
        XCTAssertNoThrow(try JSONDecoder().decode(GANConfig.self, from: Data(json.utf8)))
        json = json.replacingOccurrences(of: "lsgan-test", with: "no-such-loss")
        XCTAssertThrowsError(try JSONDecoder().decode(GANConfig.self, from: Data(json.utf8)))
        XCTAssertNil(LossKind(rawValue: "no-such-loss"))
    }

    /// The built-in losses keep their policies (what the `loss ==` checks used to say).
    func testBuiltInPolicies() {
        XCTAssertEqual(LossKind.allCases.prefix(5).map { $0.rawValue }, ["bce", "bce-saturating", "wgan", "wgan-gp", "hinge"])
        XCTAssertTrue(LossKind.wgan.loss.clipsWeights && LossKind.wgan.loss.optimizer == .rmsprop)
        XCTAssertTrue(LossKind.wganGP.loss.gradientPenalty && !LossKind.wganGP.loss.clipsWeights)
        XCTAssertEqual(LossKind.wganGP.loss.extraMetrics.map { $0.tag }, ["wgan_gp/penalty"])
        for k in [LossKind.bce, .bceSaturating] { XCTAssertTrue(k.loss.softRealLabels && k.loss.scores == .probabilities) }
        for k in [LossKind.wgan, .wganGP, .hinge] { XCTAssertTrue(!k.loss.softRealLabels && k.loss.scores == .raw) }
        var c = GANConfig(); c.loss = .wganGP
        c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: false)
        XCTAssertEqual([c.lrG, c.beta1, c.beta2], [1e-4, 0, 0.9]); XCTAssertEqual(c.nCritic, 5)
        c = GANConfig(); c.loss = .wgan
        c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: false)
        XCTAssertEqual([c.lrG, c.beta1], [5e-5, 0.5]); XCTAssertEqual(c.nCritic, 5)
    }
}

final class StepMetricsTests: XCTestCase {
    /// The coordinator's view of a step: losses and scores weighted by shard size; gradient
    /// norms (measured only by the rank that logs) taken from the rank that measured them.
    func testWeightedMeanOfRanks() {
        var a = StepMetrics(), b = StepMetrics()
        a.step = 3; b.step = 3
        a.dLoss = 1; b.dLoss = 4
        a.gradientPenalty = 2; b.gradientPenalty = 0
        a.dGradNorm = 7; b.dGradNorm = 0
        a.gGradNorm = 5; b.gGradNorm = 0
        let m = StepMetrics.weightedMean([(a, 3), (b, 1)])
        XCTAssertEqual(m.step, 3)
        XCTAssertEqual(m.dLoss, (1 * 3 + 4 * 1) / 4)
        XCTAssertEqual(m.gradientPenalty, 1.5)
        XCTAssertEqual(m.dGradNorm, 7)
        XCTAssertEqual(m.gGradNorm, 5)
    }
}
