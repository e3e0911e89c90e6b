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
    }

    /// `--model stylegan` alone trains with StyleGAN's own recipe, style-fast's values without
    /// its step count or time limit (issue 27: the tutorial's settings, 8 mapping layers, mixing
    /// 0.5, ngf = ndf = 64, batch 64, Adam 2e-4, drew 64 copies of one shape at steps 300, 1,000
    /// and 2,000 of the README's line). The tutorial's values stay one flag each away.
    func testStyleGANDefaultIsItsWorkingRecipe() throws {
        let r = TrainingPreset.styleFast
        let plain = try config(["--model", "stylegan"])
        XCTAssertEqual(plain.model, .stylegan)
        XCTAssertEqual(plain.mappingLayers, 2); XCTAssertEqual(plain.styleMixingProb, 0)
        XCTAssertEqual(plain.ngf, r.ngf); XCTAssertEqual(plain.ndf, r.ndf); XCTAssertEqual(plain.batchSize, r.batchSize)
        XCTAssertEqual(plain.lrG, r.lrG); XCTAssertEqual(plain.lrD, r.lrD); XCTAssertEqual(plain.gEMA, r.gEMA)
        XCTAssertEqual(plain.imageSize, 32)
        XCTAssertEqual(plain.steps, 1000, "the recipe's values, not style-fast's step count")
        XCTAssertNil(try TrainingFlags.parse(["--model", "stylegan"]).deadline(timeLimit: nil, from: Date()), "nor its time limit")
        let tutorial = try config(["--model", "stylegan", "--mapping-layers", "8", "--style-mixing-prob", "0.5", "--ngf", "64", "--ndf", "64",
                                   "--batch", "64", "--lr", "2e-4", "--g-ema", "0"])
        XCTAssertEqual(tutorial.mappingLayers, 8); XCTAssertEqual(tutorial.styleMixingProb, 0.5)
        XCTAssertEqual(tutorial.ngf, 64); XCTAssertEqual(tutorial.batchSize, 64)
        XCTAssertEqual(tutorial.lrG, 2e-4); XCTAssertEqual(tutorial.lrD, 2e-4); XCTAssertNil(tutorial.gEMA)
        // Another loss: its own optimizer settings, the recipe's sizes.
        let w = try config(["--model", "stylegan", "--loss", "wgan-gp"])
        XCTAssertEqual(w.lrG, 1e-4); XCTAssertEqual(w.beta1, 0); XCTAssertEqual(w.ngf, r.ngf); XCTAssertEqual(w.mappingLayers, 2)
        // A preset of another model: StyleGAN's sizes are still its own recipe's.
        let f = try config(["--preset", "fast", "--model", "stylegan"])
        XCTAssertEqual(f.mappingLayers, 2); XCTAssertEqual(f.ngf, r.ngf)
        // The other models keep the tutorial's values.
        let d = try config(["--model", "dcgan"])
        XCTAssertEqual(d.ngf, 64); XCTAssertEqual(d.batchSize, 64); XCTAssertEqual(d.lrD, 2e-4); XCTAssertNil(d.gEMA)
    }

    /// `--model sndcgan` trains with its own recipe: the hinge loss and the tutorial's TTUR at 4x
    /// its rates (the tutorial's values leave gray smudges at 1,000 steps; issue 27); a flag
    /// still wins, and another loss gets its own defaults.
    func testSNDCGANDefaultIsItsWorkingRecipe() throws {
        let r = TrainingPreset.spectralNorm
        let plain = try config(["--model", "sndcgan"])
        XCTAssertEqual(plain.loss, .hinge)
        XCTAssertEqual(plain.lrD, 1.6e-3); XCTAssertEqual(plain.lrG, 4e-4)
        XCTAssertEqual(plain.beta1, 0); XCTAssertEqual(plain.beta2, 0.9)
        XCTAssertEqual(plain.lrD, r.lrD); XCTAssertEqual(plain.lrG, r.lrG)
        XCTAssertEqual(plain.ngf, 64); XCTAssertEqual(plain.ndf, 64); XCTAssertEqual(plain.batchSize, 64); XCTAssertNil(plain.gEMA)
        XCTAssertEqual(plain.steps, 1000)
        XCTAssertEqual(try config(["--model", "sndcgan", "--loss", "hinge"]), plain, "naming the recipe's loss changes nothing")
        let tutorial = try config(["--model", "sndcgan", "--loss", "hinge", "--lr-d", "4e-4", "--lr-g", "1e-4"])
        XCTAssertEqual(tutorial.lrD, 4e-4); XCTAssertEqual(tutorial.lrG, 1e-4); XCTAssertEqual(tutorial.beta1, 0)
        let bce = try config(["--model", "sndcgan", "--loss", "bce"])
        XCTAssertEqual(bce.lrD, 2e-4); XCTAssertEqual(bce.beta1, 0.5)
        let gp = try config(["--model", "sndcgan", "--loss", "wgan-gp"])
        XCTAssertEqual(gp.lrD, 1e-4); XCTAssertEqual(gp.nCritic, 5)
        // A preset's loss comes before the model's recipe.
        XCTAssertEqual(try config(["--preset", "fast", "--model", "sndcgan"]).loss, .bce)
        XCTAssertNil(TrainingPreset.named("sndcgan"), "a model's recipe, not a --preset")
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
