import Foundation
import NN
import Tensors

/// A generator and discriminator with their optimizers, built from a config.
public final class GANModels {
    public let config: GANConfig
    public let generator: GeneratorModel
    public let discriminator: DiscriminatorModel
    public let gParams: ParameterGroup
    public let dParams: ParameterGroup
    public let optG: Optimizer
    public let optD: Optimizer
    /// The config's loss.
    public let loss: GANLoss
    /// With `--g-ema DECAY`: an exponential moving average of G's weights (BatchNorm buffers
    /// copied from G), which sampling, evaluation, grids and export use.
    public let emaGenerator: GeneratorModel?

    public init(config: GANConfig) {
        self.config = config
        var gRng = RandomGenerator(seed: config.seed, stream: 0x6E)   // 'G'
        var dRng = RandomGenerator(seed: config.seed, stream: 0x64)   // 'D'
        let c = config
        (generator, discriminator) = GANModels.build(c, gRng: &gRng, dRng: &dRng)
        if c.gEMA != nil {
            // The same init as G (same seed and stream): the average starts at G's weights.
            var eRng = RandomGenerator(seed: config.seed, stream: 0x6E)
            var unused = RandomGenerator(seed: config.seed, stream: 0x64)
            emaGenerator = GANModels.build(c, gRng: &eRng, dRng: &unused).0
            emaGenerator?.eval()
        } else {
            emaGenerator = nil
        }
        gParams = ParameterGroup(generator)
        dParams = ParameterGroup(discriminator)
        loss = c.loss.loss
        optG = loss.makeOptimizer(gParams, lr: c.lrG, config: c)
        optD = loss.makeOptimizer(dParams, lr: c.lrD, config: c)
        // The layers' own weight tensors (now copied into the flat buffers) and the default-init
        // values dcganInit replaced sit in the block cache: hand them back.
        releaseCachedTensorMemory()
    }

    static func build(_ c: GANConfig, gRng: inout RandomGenerator, dRng: inout RandomGenerator)
        -> (GeneratorModel, DiscriminatorModel)
    {
        switch (c.model, c.progressive) {
        case (.mlp, _):
            return (MLPGenerator(latentDim: c.latentDim, imageShape: [c.nc, 28, 28], rng: &gRng),
                    MLPDiscriminator(imageShape: [c.nc, 28, 28], rng: &dRng))
        case (.dcgan, true), (.sndcgan, true):
            return (ProgressiveGenerator(latentDim: c.latentDim, ngf: c.ngf, nc: c.nc, imageSize: c.imageSize, rng: &gRng),
                    ProgressiveDiscriminator(nc: c.nc, ndf: c.ndf, imageSize: c.imageSize, spectral: c.model == .sndcgan, rng: &dRng))
        case (.dcgan, false), (.sndcgan, false):
            return (DCGANGenerator(latentDim: c.latentDim, ngf: c.ngf, nc: c.nc, imageSize: c.imageSize, rng: &gRng),
                    DCGANDiscriminator(nc: c.nc, ndf: c.ndf, imageSize: c.imageSize, spectral: c.model == .sndcgan, rng: &dRng))
        case (.stylegan, _):
            return (StyleGenerator(latentDim: c.latentDim, wDim: c.wDim, mappingLayers: c.mappingLayers, ngf: c.ngf,
                                   nc: c.nc, imageSize: c.imageSize, rng: &gRng),
                    StyleDiscriminator(nc: c.nc, ndf: c.ndf, imageSize: c.imageSize, rng: &dRng))
        }
    }

    /// Sets the growth state of progressive models (no-op otherwise).
    public func setGrowth(_ s: GrowthState) {
        (generator as? ProgressiveGenerator)?.growth = s
        (emaGenerator as? ProgressiveGenerator)?.growth = s
        (discriminator as? ProgressiveDiscriminator)?.growth = s
    }

    public var growthSchedule: GrowthSchedule? {
        guard let g = generator as? ProgressiveGenerator else { return nil }
        return GrowthSchedule(totalSteps: config.steps, maxLevel: g.maxLevel)
    }

    /// False: sampling uses G itself even where the EMA of its weights is kept (the sampling
    /// commands' --raw-generator).
    public var samplesFromAverage = true

    /// The generator samples come from: the EMA of G's weights when enabled, else G.
    public var samplingGenerator: GeneratorModel { samplesFromAverage ? (emaGenerator ?? generator) : generator }

    /// Images from latents in eval mode (running BN statistics), without recording.
    public func sample(_ z: Tensor) -> Tensor {
        if samplesFromAverage, let e = emaGenerator {
            e.eval()
            return withNoGrad { e.generate(z) }
        }
        generator.eval()
        defer { generator.train() }
        return withNoGrad { generator.generate(z) }
    }
}
