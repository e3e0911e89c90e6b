import ArgumentParser
import Foundation
import GAN

/// The flags that define a training run, shared by `gan train` and `gan-coordinator`.
public struct TrainingFlags: ParsableArguments {
    public init() {}

    @Option(help: "Model: \(ModelKind.allCases.map { $0.rawValue }.joined(separator: ", ")).")
    public var model: String = "dcgan"
    @Option(help: "Loss: \(LossKind.allCases.map { $0.rawValue }.joined(separator: ", ")).")
    public var loss: String = "bce"
    @Option(help: "Image size: 28 for mlp; 32 (MNIST padded) or 64 (MNIST resized) for the conv models.")
    public var imageSize: Int?
    @Option(help: "Generator feature maps (DCGAN's ngf).") public var ngf: Int = 64
    @Option(help: "Discriminator feature maps (DCGAN's ndf).") public var ndf: Int = 64
    @Option(help: "Image channels.") public var nc: Int = 1
    @Option(help: "Latent size.") public var latentDim: Int = 100
    @Option(help: "StyleGAN: w size.") public var wDim: Int = 128
    @Option(help: "StyleGAN: mapping network layers.") public var mappingLayers: Int = 8
    @Option(help: "StyleGAN: probability of style-mixing regularisation per step.") public var styleMixingProb: Float = 0.5
    @Flag(help: "Progressive growing (ProGAN schedule 4 -> 8 -> ... with fade-in) for dcgan / sndcgan.")
    public var progressive = false
    @Option(help: "Training steps (each: n_critic D updates and one G update; default 1000, or with --resume the checkpoint's run length).")
    public var steps: Int?
    @Option(help: "Global batch size.") public var batch: Int = 64
    @Option(help: "Seed for weights, data order and every latent.") public var seed: UInt64 = 0
    @Option(help: "Learning rate of both networks (see --lr-g/--lr-d for TTUR).") public var lr: Float?
    @Option(help: "Generator learning rate (TTUR).") public var lrG: Float?
    @Option(help: "Discriminator learning rate (TTUR).") public var lrD: Float?
    @Option(help: "Adam beta1.") public var beta1: Float?
    @Option(help: "Adam beta2.") public var beta2: Float?
    @Option(help: "Discriminator updates per generator update.") public var nCritic: Int?
    @Option(help: "WGAN weight clipping bound.") public var clip: Float = 0.01
    @Option(help: "WGAN-GP penalty weight.") public var gpLambda: Float = 10
    @Option(help: "One-sided label smoothing: real targets (e.g. 0.9); not with --noisy-labels.") public var labelSmoothing: Float?
    @Flag(help: "Noisy real labels, uniform in [0.7, 1.0] per sample; not with --label-smoothing.") public var noisyLabels = false
    @Option(help: "Keep an exponential moving average of G's weights with this decay (e.g. 0.999) and sample, evaluate and export it.")
    public var gEma: Float?
    @Option(help: "Dataset: mnist (the 5,000 real digits set-up installs) or fashion-mnist.") public var dataset: String = "mnist"
    @Option(help: "A standard MNIST-format folder to read instead of the dataset's default.") public var data: String?

    /// The length of a resumed run: --steps when given (never less than the checkpoint's step),
    /// else the length of the run that wrote the checkpoint.
    public func resumedSteps(checkpointStep: Int, runSteps: Int) -> Int { max(steps ?? runSteps, checkpointStep) }

    /// The run's config, with the tutorial's defaults for the chosen loss; throws a validation
    /// error naming the flag that is wrong.
    public func config() throws -> GANConfig {
        var config = GANConfig()
        guard let m = ModelKind(rawValue: model) else { throw ValidationError("unknown --model '\(model)'") }
        guard let l = LossKind(rawValue: loss) else { throw ValidationError("unknown --loss '\(loss)'") }
        config.model = m
        config.loss = l
        config.imageSize = imageSize ?? (m == .mlp ? 28 : 32)
        config.ngf = ngf; config.ndf = ndf; config.nc = nc; config.latentDim = latentDim
        config.wDim = wDim; config.mappingLayers = mappingLayers; config.styleMixingProb = styleMixingProb
        config.progressive = progressive
        config.steps = steps ?? 1000; config.batchSize = batch; config.seed = seed
        config.applyLossDefaults(lrGiven: lr != nil || lrG != nil || lrD != nil, betasGiven: beta1 != nil || beta2 != nil,
                                 nCriticGiven: nCritic != nil)
        if let v = lr { config.lrG = v; config.lrD = v }
        if let v = lrG { config.lrG = v }
        if let v = lrD { config.lrD = v }
        if let v = beta1 { config.beta1 = v }
        if let v = beta2 { config.beta2 = v }
        if let v = nCritic { config.nCritic = v }
        config.clip = clip; config.gpLambda = gpLambda
        config.labelSmoothing = labelSmoothing; config.noisyLabels = noisyLabels
        config.gEMA = gEma
        config.dataset = dataset; config.dataDir = data
        if let problem = config.validate() { throw ValidationError(problem) }
        return config
    }
}

/// Where a run writes and how often, shared by `gan train` and `gan-coordinator`.
public struct RunFlags: ParsableArguments {
    public init() {}

    @Option(help: "Folder for runs.") public var runsDir: String = "runs"
    @Option(help: "Run name (default: model-loss-time).") public var name: String?
    @Option(help: "Write a sample grid every K steps (0: only at the end).") public var sampleEvery: Int = 100
    @Option(help: "Write a checkpoint every K steps (0: only at the end).") public var checkpointEvery: Int = 500
    @Option(help: "Checkpoints to keep.") public var keep: Int = 3
    @Option(help: "Write metrics.jsonl lines and TensorBoard scalars every K steps and at the end (gradient norms are measured only then).")
    public var logEvery: Int = 1
    @Option(help: "Continue from this checkpoint (its config is used; --steps may extend the run).") public var resume: String?

    /// The folder of a new run: `<runs-dir>/<name>`, the name defaulting to model-loss-time.
    public func newRunPath(_ config: GANConfig) -> String {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        return runsDir + "/" + (name ?? "\(config.model.rawValue)-\(config.loss.rawValue)-\(stamp)")
    }
}
