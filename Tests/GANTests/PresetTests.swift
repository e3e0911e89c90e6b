import ArgumentParser
import Foundation
import GAN
import TrainingCLI
import XCTest

/// `--preset`: the preset's values become the config, explicit flags override them, its sizes
/// and optimizer settings follow only its own model and loss, and its time budget is the default
/// deadline.
final class PresetTests: XCTestCase {
    func config(_ args: [String]) throws -> GANConfig { try TrainingFlags.parse(args).config() }

    func testPresetValuesAndOverrides() throws {
        let p = TrainingPreset.fast
        var expected = GANConfig()
        p.apply(to: &expected)
        let c = try config(["--preset", "fast"])
        XCTAssertEqual(c, expected)
        XCTAssertEqual(c.model, p.model); XCTAssertEqual(c.ngf, p.ngf); XCTAssertEqual(c.ndf, p.ndf)
        XCTAssertEqual(c.batchSize, p.batchSize); XCTAssertEqual(c.steps, p.steps)
        XCTAssertEqual(c.lrG, p.lrG); XCTAssertEqual(c.lrD, p.lrD); XCTAssertEqual(c.gEMA, p.gEMA)
        // No preset: the plain defaults, unchanged by the preset machinery.
        XCTAssertEqual(try config([]), { var d = GANConfig(); d.steps = 1000; return d }())
        // Explicit flags win, one value each; the rest stays the preset's.
        let o = try config(["--preset", "fast", "--batch", "\(p.batchSize + 16)", "--lr-g", "0.001", "--steps", "7", "--ngf", "\(p.ngf + 8)"])
        XCTAssertEqual(o.batchSize, p.batchSize + 16)
        XCTAssertEqual(o.lrG, 0.001); XCTAssertEqual(o.lrD, p.lrD)
        XCTAssertEqual(o.steps, 7)
        XCTAssertEqual(o.ngf, p.ngf + 8); XCTAssertEqual(o.ndf, p.ndf)
        XCTAssertEqual(o.gEMA, p.gEMA)
        // --g-ema 0 turns the preset's average off; another decay replaces it.
        XCTAssertNil(try config(["--preset", "fast", "--g-ema", "0"]).gEMA)
        XCTAssertEqual(try config(["--preset", "fast", "--g-ema", "0.99"]).gEMA, 0.99)
    }

    func testAnotherModelOrLossGetsItsOwnDefaults() throws {
        let p = TrainingPreset.fast
        // Another loss: that loss's tutorial settings, not the preset's learning rates.
        let w = try config(["--preset", "fast", "--loss", "wgan-gp"])
        XCTAssertEqual(w.loss, .wganGP)
        XCTAssertEqual(w.lrG, 1e-4); XCTAssertEqual(w.lrD, 1e-4); XCTAssertEqual(w.beta1, 0); XCTAssertEqual(w.nCritic, 5)
        XCTAssertEqual(w.batchSize, p.batchSize)
        // Another model: its own image size (the preset's sizes belong to its model).
        let m = try config(["--preset", "fast", "--model", p.model == .mlp ? "dcgan" : "mlp"])
        XCTAssertEqual(m.imageSize, p.model == .mlp ? 32 : 28)
        XCTAssertEqual(m.ngf, 64)
        XCTAssertThrowsError(try config(["--preset", "slow"])) { XCTAssertTrue("\($0)".contains("unknown --preset 'slow'"), "\($0)") }
    }

    /// `style-fast` also sets StyleGAN's mapping depth and mixing probability; flags override
    /// them, and another model keeps the flags' defaults.
    func testStylePresetSetsStyleGANFlags() throws {
        let p = TrainingPreset.styleFast
        let c = try config(["--preset", "style-fast"])
        var expected = GANConfig()
        p.apply(to: &expected)
        XCTAssertEqual(c, expected)
        XCTAssertEqual(c.model, .stylegan)
        XCTAssertEqual(c.mappingLayers, 2); XCTAssertEqual(c.styleMixingProb, 0)
        XCTAssertEqual(c.lrG, 4e-4); XCTAssertEqual(c.lrD, 1.6e-3)
        let o = try config(["--preset", "style-fast", "--mapping-layers", "8", "--style-mixing-prob", "0.9"])
        XCTAssertEqual(o.mappingLayers, 8); XCTAssertEqual(o.styleMixingProb, 0.9)
        let d = try config(["--preset", "style-fast", "--model", "dcgan"])
        XCTAssertEqual(d.mappingLayers, 8); XCTAssertEqual(d.styleMixingProb, 0.5)
        // Without a preset, StyleGAN's flags keep their defaults.
        let plain = try config(["--model", "stylegan"])
        XCTAssertEqual(plain.mappingLayers, 8); XCTAssertEqual(plain.styleMixingProb, 0.5)
    }

    func testPresetTimeBudgetIsTheDefaultDeadline() throws {
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        let f = try TrainingFlags.parse(["--preset", "fast"])
        XCTAssertEqual(try f.deadline(timeLimit: nil, from: t0), TrainingPreset.fast.timeLimit.map { t0.addingTimeInterval($0) })
        XCTAssertNotNil(TrainingPreset.fast.timeLimit)
        XCTAssertEqual(try f.deadline(timeLimit: "90s", from: t0), t0.addingTimeInterval(90))
        XCTAssertNil(try TrainingFlags.parse([]).deadline(timeLimit: nil, from: t0))
        XCTAssertThrowsError(try f.deadline(timeLimit: "5 min", from: t0))
    }
}
