import Datasets
import Foundation
import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// Samples must depend on the latent: after a short training run every model's images differ
/// from one latent to the next, and StyleGAN's mixing grid differs along rows and columns. (The
/// tutorial's StyleGAN at PyTorch's default init drew the same stroke for every z: per-pixel
/// std 0.00003 across latents after 300 steps.)
final class LatentVariationTests: XCTestCase {
    static func perPixelSpread(_ x: Tensor) -> Float { latentSpread(x) }

    /// Mean absolute difference between images i and j of `x`.
    static func meanAbsDiff(_ x: Tensor, _ i: Int, _ j: Int) -> Float {
        let a = x.narrow(0, i, 1).toArray(), b = x.narrow(0, j, 1).toArray()
        return zip(a, b).reduce(0) { $0 + Swift.abs($1.0 - $1.1) } / Float(a.count)
    }

    func trained(_ c: GANConfig, steps: Int) throws -> GANModels {
        let models = GANModels(config: c)
        let trainer = try GANTrainer(models: models, dataset: blobs(64))
        for _ in 0..<steps { try trainer.trainStep() }
        return models
    }

    func testSamplesVaryWithTheLatentForEveryModel() throws {
        let cases: [GANConfig] = [smallConfig(.mlp, .bce), smallConfig(.dcgan, .bce), smallConfig(.sndcgan, .hinge),
                                  smallConfig(.dcgan, .bce, progressive: true), smallConfig(.stylegan, .bce)]
        for var c in cases {
            c.mappingLayers = 8   // StyleGAN's depth (the default), where the tutorial's version lost z
            // (BatchNorm's running statistics, which sampling uses, need a few tens of steps to
            // leave their initial variance of 1: at 24 steps DCGAN's eval-mode spread is still 0.005.)
            c.steps = 60
            let name = "\(c.model.rawValue)\(c.progressive ? "+progressive" : "")"
            let models = try trained(c, steps: c.steps)
            let z = latents(seed: 3, .fixedNoise, step: 0, indices: Array(0..<16), dim: c.latentDim)
            let x = models.sample(z)
            let spread = LatentVariationTests.perPixelSpread(x)
            print("\(name): per-pixel std across 16 latents \(spread)")
            XCTAssertGreaterThan(spread, 0.02, "\(name): samples barely depend on the latent (per-pixel std \(spread))")
            // Two different latents give visibly different images, the same latent the same one.
            XCTAssertGreaterThan(LatentVariationTests.meanAbsDiff(x, 0, 1), 0.01, name)
            assertClose(models.sample(z.narrow(0, 0, 2)), x.narrow(0, 0, 2), atol: 1e-4, rtol: 1e-3, "\(name): sampling is not a function of z")
        }
    }

    /// The style-mixing grid (`gan style-mix`): along a column (coarse styles from different row
    /// latents) and along a row (fine styles from different column latents) the images differ.
    func testStyleMixingGridRowsAndColumnsDiffer() throws {
        var c = smallConfig(.stylegan, .bce)
        c.steps = 60
        c.mappingLayers = 8
        c.imageSize = 32
        let models = try trained(c, steps: c.steps)
        let g = models.generator as! StyleGenerator
        XCTAssertEqual(g.numLayers, 3)   // styles at 4, 8, 16 (the last transposed conv makes 32)
        let k = 4
        let za = latents(seed: 3, .styleMix, step: 0, indices: Array(0..<k), dim: c.latentDim)
        let zb = latents(seed: 3, .styleMix, step: 1, indices: Array(0..<k), dim: c.latentDim)
        g.eval()
        defer { g.train() }
        for crossover in [1, 2] {
            let grid = withNoGrad { g.mixingGrid(rows: za, columns: zb, crossover: crossover) }
            XCTAssertEqual(grid.shape[0], k * k)
            var rowDiff: Float = 0, colDiff: Float = 0, pairs: Float = 0
            for a in 0..<k {
                for b in (a + 1)..<k {
                    for j in 0..<k {
                        colDiff += LatentVariationTests.meanAbsDiff(grid, a * k + j, b * k + j)   // same column, other row
                        rowDiff += LatentVariationTests.meanAbsDiff(grid, j * k + a, j * k + b)   // same row, other column
                        pairs += 1
                    }
                }
            }
            rowDiff /= pairs; colDiff /= pairs
            print("stylegan crossover \(crossover): mean |diff| along a row \(rowDiff), along a column \(colDiff)")
            XCTAssertGreaterThan(colDiff, 0.01, "crossover \(crossover): rows (coarse styles) do not change the image")
            XCTAssertGreaterThan(rowDiff, 0.003, "crossover \(crossover): columns (fine styles) do not change the image")
            // Cell (i, j) is mix(A_i, B_j).
            let cell = withNoGrad { g.mix(za.narrow(0, 2, 1), zb.narrow(0, 1, 1), crossover: crossover) }
            assertClose(cell, grid.narrow(0, 2 * k + 1, 1), atol: 1e-5, rtol: 1e-4, "grid cell (2, 1)")
        }
    }

    /// StyleGAN's truncation (gan sample / interpolate / style-mix --truncation psi): psi 1 changes
    /// nothing, psi 0 maps every z to the mean w (one image while the noise strengths are still
    /// 0, as at init), psi 0.5 lies between; training ignores it.
    func testTruncationPullsTowardsTheMeanW() {
        var c = smallConfig(.stylegan, .bce)
        c.mappingLayers = 8
        let models = GANModels(config: c)
        let g = models.generator as! StyleGenerator
        let z = latents(seed: 3, .fixedNoise, step: 0, indices: Array(0..<16), dim: c.latentDim)
        let full = models.sample(z)
        g.truncation = 1
        XCTAssertEqual(models.sample(z).toArray(), full.toArray())
        g.truncation = 0
        let zero = models.sample(z)
        XCTAssertLessThan(LatentVariationTests.perPixelSpread(zero), 1e-5, "psi 0: not the mean w's image")
        g.truncation = 0.5
        let half = LatentVariationTests.perPixelSpread(models.sample(z)), all = LatentVariationTests.perPixelSpread(full)
        print("truncation: per-pixel std psi 1 \(all), psi 0.5 \(half)")
        XCTAssertLessThan(half, 0.9 * all)
        XCTAssertGreaterThan(half, 0.1 * all)
        // Training mode (the trainer's fakes) ignores it.
        g.truncation = 0
        g.train()
        let trainOut = withNoGrad { g.generate(z) }
        g.truncation = 1
        XCTAssertEqual(withNoGrad { g.generate(z) }.toArray(), trainOut.toArray())
    }
}

/// The collapse watch: a warning after `grids` low grids in a row, once per run of them, none for
/// grids above the bound; and the spread itself separates one repeated image from varied ones.
final class CollapseWatchTests: XCTestCase {
    func testWarnsAfterARunOfLowGridsOnce() {
        var w = CollapseWatch(bound: 0.05, grids: 3)
        let spreads: [Float] = [0.2, 0.04, 0.03, 0.2, 0.04, 0.04, 0.04, 0.03, 0.02, 0.3, 0.01, 0.01, 0.01]
        var warnedAt: [Int] = []
        for (i, s) in spreads.enumerated() where w.observe(spread: s, step: i) != nil { warnedAt.append(i) }
        XCTAssertEqual(warnedAt, [6, 12], "once per run of three low grids, re-armed by a good one")
    }

    func testSpreadOfOneRepeatedImageIsZeroAndOfVariedOnesIsNot() {
        var rng = RandomGenerator(seed: 4)
        let one = Tensor.randn([1, 1, 8, 8], generator: &rng).tanh()
        let same = concat(Array(repeating: one, count: 16), dim: 0)
        XCTAssertEqual(latentSpread(same), 0, accuracy: 1e-6)
        let varied = Tensor.randn([16, 1, 8, 8], generator: &rng).tanh()
        XCTAssertGreaterThan(latentSpread(varied), 0.3)
    }
}
