import Foundation

/// A named training recipe (`gan train --preset NAME`, `gan-coordinator --preset NAME`): the
/// values of the flags it stands for. Flags given explicitly override the preset's values; the
/// preset's image size and feature maps apply only to its own model, and its learning rates and
/// betas only to its own loss (another `--model` or `--loss` gets that one's defaults).
public struct TrainingPreset: Sendable, Equatable {
    public var name: String
    /// One line for `--help` and logs.
    public var summary: String
    public var model: ModelKind
    public var loss: LossKind
    public var imageSize: Int
    public var ngf: Int
    public var ndf: Int
    public var latentDim: Int
    public var batchSize: Int
    public var steps: Int
    public var lrG: Float
    public var lrD: Float
    public var beta1: Float
    public var beta2: Float
    public var gEMA: Float?
    /// Where linear learning-rate decay starts, as a fraction of the steps (nil: constant);
    /// an optimizer setting, so it goes with the preset's loss like the learning rates.
    public var lrDecayFrom: Float? = nil
    /// StyleGAN's mapping depth and style-mixing probability (nil: the flags' defaults).
    public var mappingLayers: Int? = nil
    public var styleMixingProb: Float? = nil
    /// The wall-clock budget the recipe was chosen for; used as `--time-limit` unless one is given.
    public var timeLimit: TimeInterval?

    public static let all: [TrainingPreset] = [.fast, .styleFast]

    public static func named(_ name: String) -> TrainingPreset? { all.first { $0.name == name } }

    /// A model's own recipe, whose loss (where no flag or preset gives one), sizes, batch, EMA and
    /// (for its loss) optimizer settings apply where no preset gives that model's (never its step
    /// count or time limit):
    /// - StyleGAN's is `styleFast`'s, since the tutorial's settings collapse on these digits
    ///   (issue 27: 64 copies of one shape at steps 300, 1,000 and 2,000, spread 0.042 against
    ///   DCGAN's 0.16);
    /// - sndcgan's is `spectralNorm`'s, since the tutorial's rates train its spectral-norm
    ///   discriminator too slowly to draw digits in 1,000 steps.
    /// mlp and dcgan train with the tutorial's values.
    public static func recipe(for model: ModelKind) -> TrainingPreset? {
        switch model {
        case .stylegan: return .styleFast
        case .sndcgan: return .spectralNorm
        case .mlp, .dcgan: return nil
        }
    }

    /// The values this preset gives a config (before any explicit flag).
    public func apply(to c: inout GANConfig) {
        c.model = model; c.loss = loss; c.imageSize = imageSize
        c.ngf = ngf; c.ndf = ndf; c.latentDim = latentDim
        c.batchSize = batchSize; c.steps = steps
        c.lrG = lrG; c.lrD = lrD; c.beta1 = beta1; c.beta2 = beta2
        c.gEMA = gEMA; c.lrDecayFrom = lrDecayFrom
        if let v = mappingLayers { c.mappingLayers = v }
        if let v = styleMixingProb { c.styleMixingProb = v }
    }
}

extension TrainingPreset {
    /// `--preset fast`: the lowest FID in 5 minutes of wall clock on 2 cores, chosen by
    /// measurement (bench/RESULTS.md, "Choosing --preset fast"): the 32x32 DCGAN at a quarter of
    /// the tutorial's width (ngf = ndf = 16), BCE with Adam at twice the tutorial's learning rate
    /// (4e-4, betas 0.5, 0.999), batch 16, and an exponential moving average of G's weights (decay
    /// 0.999) for sampling. Narrow nets and small batches buy steps: on 2 cores of an AMD EPYC
    /// (Zen 2) it makes about 108 steps/s, 32,420 steps in 300 s, against 4.4 steps/s for the
    /// tutorial's widths and batch 64; trained for those steps its FID was 3.24, against 4.16 at
    /// batch 32 and the same rate, and 5.93 at batch 16 and the tutorial's 2e-4. The run ends at
    /// 32,420 steps or after 5 minutes, whichever comes first.
    public static let fast = TrainingPreset(
        name: "fast", summary: "the lowest FID in 5 minutes on 2 cores: dcgan 32x32, ngf = ndf = 16, BCE, Adam lr 4e-4, batch 16, G EMA 0.999, 5-minute limit",
        model: .dcgan, loss: .bce, imageSize: 32, ngf: 16, ndf: 16, latentDim: 100, batchSize: 16, steps: 32_420,
        lrG: 4e-4, lrD: 4e-4, beta1: 0.5, beta2: 0.999, gEMA: 0.999, timeLimit: 300)
}

extension TrainingPreset {
    /// `--preset style-fast`: StyleGAN's recipe for 5 minutes on 2 cores, chosen by 150-s races
    /// at one thread (bench/RESULTS.md, "StyleGAN recipes tried"): 32x32, ngf = ndf = 16, BCE,
    /// batch 16, G's Adam at 4e-4 and D's at 1.6e-3 (TTUR: without BatchNorm, D needs the higher
    /// rate to keep up; 8e-4 gave FID 11.6, 1.6e-3 8.1, 3.2e-3 9.5), 2 mapping layers (8 gave
    /// 17.9), no style-mixing regularisation, G EMA 0.999. It makes about 0.64x the steps of
    /// `fast` per second (20,650 in 300 s where `fast` makes 32,420); the run ends at those
    /// steps or after 5 minutes, whichever comes first.
    public static let styleFast = TrainingPreset(
        name: "style-fast", summary: "StyleGAN's recipe for 5 minutes on 2 cores: stylegan 32x32, ngf = ndf = 16, BCE, batch 16, Adam lr 4e-4 (G) and 1.6e-3 (D), 2 mapping layers, no style mixing, G EMA 0.999, 5-minute limit",
        model: .stylegan, loss: .bce, imageSize: 32, ngf: 16, ndf: 16, latentDim: 100, batchSize: 16, steps: 20_650,
        lrG: 4e-4, lrD: 1.6e-3, beta1: 0.5, beta2: 0.999, gEMA: 0.999, mappingLayers: 2, styleMixingProb: 0, timeLimit: 300)
}

extension TrainingPreset {
    /// sndcgan's own recipe (`gan train --model sndcgan`; not a `--preset`): SN-GAN's hinge loss
    /// and the tutorial's TTUR (D's rate 4 times G's, Adam betas 0, 0.9) at 4 times the tutorial's
    /// rates, D 1.6e-3 and G 4e-4, with the tutorial's sizes and batch. The tutorial's values
    /// train the spectral-norm discriminator too slowly on these digits (bench/RESULTS.md, "The
    /// sndcgan rows"): BCE at Adam 2e-4 (0.5, 0.999) and the hinge loss at 4e-4/1e-4 (0, 0.9) both
    /// give gray-background smudges at 1,000 steps (FID 651), PyTorch's too; these rates draw
    /// digits by step 300 (spread 0.22, against 0.06).
    public static let spectralNorm = TrainingPreset(
        name: "sndcgan", summary: "sndcgan's own recipe: hinge loss, TTUR Adam lr 1.6e-3 (D) and 4e-4 (G), betas 0, 0.9",
        model: .sndcgan, loss: .hinge, imageSize: 32, ngf: 64, ndf: 64, latentDim: 100, batchSize: 64, steps: 1000,
        lrG: 4e-4, lrD: 1.6e-3, beta1: 0, beta2: 0.9, gEMA: nil, timeLimit: nil)
}
