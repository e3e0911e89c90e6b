import Datasets
import Foundation
import NN

public enum ModelKind: String, Codable, CaseIterable, Sendable {
    case mlp, dcgan, sndcgan, stylegan
}

/// Everything that defines a run; saved in every checkpoint.
public struct GANConfig: Codable, Equatable, Sendable {
    public var model: ModelKind = .dcgan
    public var loss: LossKind = .bce
    public var dataset = "mnist"
    public var dataDir: String? = nil
    public var imageSize = 32
    public var nc = 1
    public var ngf = 64
    public var ndf = 64
    public var latentDim = 100
    public var wDim = 128
    public var mappingLayers = 8
    public var styleMixingProb: Float = 0.5
    public var progressive = false
    public var batchSize = 64
    public var steps = 1000
    public var seed: UInt64 = 0
    public var lrG: Float = 2e-4
    public var lrD: Float = 2e-4
    public var beta1: Float = 0.5
    public var beta2: Float = 0.999
    public var nCritic = 1
    public var clip: Float = 0.01
    public var gpLambda: Float = 10
    /// One-sided label smoothing: real targets become this (0.9), nil for none.
    public var labelSmoothing: Float? = nil
    /// Noisy real labels, uniform in [0.7, 1.0] per sample.
    public var noisyLabels = false
    /// Decay of the exponential moving average of G's weights used for sampling (nil: none).
    public var gEMA: Float? = nil
    /// Linear learning-rate decay (`--lr-decay-from F`): both learning rates stay as given for
    /// the first F of `steps`, then fall linearly to zero at `steps` (nil: constant). A function
    /// of the step alone, so every rank, a resumed run and exact mode agree on it.
    public var lrDecayFrom: Float? = nil

    /// The factor on both learning rates at `step` (0-based): 1 before the decay starts, then
    /// (steps - step) / (steps - start), which reaches 1 / (steps - start) at the last step.
    public func lrScale(atStep step: Int) -> Float {
        guard let f = lrDecayFrom, steps > 0 else { return 1 }
        let start = (Double(steps) * Double(f)).rounded(.down)
        guard Double(step) >= start else { return 1 }
        return Float(max(0, Double(steps) - Double(step)) / max(Double(steps) - start, 1))
    }
    /// Exact mode: each global batch is cut into this many equal micro-batches, each one's
    /// gradients computed alone and summed exactly (`ExactSum`), so that the weights depend on the
    /// seed, the config and the global batch and not on the number of workers (nil: off). Any
    /// number of workers up to it can train the run.
    public var microBatches: Int? = nil
    /// Exact mode's cut of every engine loop (`ThreadPool.fixSplits`), so that the bits do not
    /// depend on any process's thread count: at most this many threads work on one loop (nil: 1,
    /// which costs a one-thread worker nothing).
    public var exactSplitsGiven: Int? = nil
    /// `exactSplitsGiven`, else 1.
    public var exactSplits: Int { exactSplitsGiven ?? 1 }

    public init() {}


    /// Exact mode's default number of micro-batches (`--exact` without `--micro-batches`): 8,
    /// or the largest divisor of the batch below it (a function of the config alone, never of
    /// the number of workers).
    public static func defaultMicroBatches(batch: Int) -> Int {
        var a = max(batch, 1), b = 8
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    /// The largest batch `validate` accepts.
    public static let maxBatchSize = 1 << 16

    /// Applies the defaults the loss implies (the tutorial's settings) where the user gave none.
    public mutating func applyLossDefaults(lrGiven: Bool, betasGiven: Bool, nCriticGiven: Bool) {
        let d = loss.loss.defaults
        if !lrGiven, let lr = d.lr { lrG = lr; lrD = lr }
        if !betasGiven, let b = d.betas { beta1 = b.0; beta2 = b.1 }
        if !nCriticGiven, let n = d.nCritic { nCritic = n }
    }

    /// Whether `other` is this run's config but for its step count (`--steps` may extend a
    /// resumed run): what resuming a checkpoint requires.
    public func sameRun(as other: GANConfig) -> Bool {
        var a = self
        a.steps = other.steps
        return a == other
    }

    /// The image size a model trains at unless a flag or preset says otherwise: the tutorial's
    /// MLP works on 28x28 images (the only size it takes), the convolutional models on 32x32.
    public static func defaultImageSize(_ model: ModelKind) -> Int { model == .mlp ? 28 : 32 }

    /// A problem with the combination of settings, or nil.
    public func validate() -> String? {
        if model == .mlp && imageSize != GANConfig.defaultImageSize(.mlp) { return "the mlp model works on 28x28 images (got --image-size \(imageSize))" }
        if model != .mlp && ![16, 32, 64].contains(imageSize) { return "--image-size must be 16, 32 or 64 for \(model.rawValue) (got \(imageSize))" }
        if DatasetName(rawValue: dataset) == nil {
            return "unknown --dataset '\(dataset)' (one of \(DatasetName.allCases.map { $0.rawValue }.joined(separator: ", ")))"
        }
        if progressive && !(model == .dcgan || model == .sndcgan) { return "--progressive applies to the dcgan and sndcgan models" }
        // Upper bounds, so that a config from a file or a peer (a checkpoint, the coordinator's
        // start message) cannot ask for an absurd model or an overflowing size.
        for (name, value, range) in [("--batch", batchSize, 1...GANConfig.maxBatchSize), ("--steps", steps, 0...1_000_000_000),
                                     ("--n-critic", nCritic, 1...1000), ("--nc", nc, 1...4),
                                     ("--ngf", ngf, 1...4096), ("--ndf", ndf, 1...4096), ("--latent-dim", latentDim, 1...4096),
                                     ("--w-dim", wDim, 1...4096), ("--mapping-layers", mappingLayers, 1...64)] where !range.contains(value) {
            return "\(name) must be in \(range.lowerBound)...\(range.upperBound) (got \(value))"
        }
        for (name, value) in [("--lr-g", lrG), ("--lr-d", lrD), ("--beta1", beta1), ("--beta2", beta2), ("--clip", clip),
                              ("--gp-lambda", gpLambda), ("--style-mixing-prob", styleMixingProb)] where !(value.isFinite && value >= 0) {
            return "\(name) must be a finite non-negative number (got \(value))"
        }
        for (name, value) in [("--beta1", beta1), ("--beta2", beta2)] where !(value < 1) {
            return "\(name) must be in [0, 1) (Adam's decay rates; got \(value))"
        }
        if !(styleMixingProb <= 1) { return "--style-mixing-prob must be in 0...1 (a probability; got \(styleMixingProb))" }
        if let s = labelSmoothing, !(s > 0 && s <= 1) { return "--label-smoothing must be in (0, 1] (got \(s))" }
        if let f = lrDecayFrom, !(f >= 0 && f < 1) { return "--lr-decay-from must be in [0, 1) (the fraction of --steps before the learning rates start falling; got \(f))" }
        if let d = gEMA, !(d > 0 && d < 1) { return "--g-ema must be in (0, 1) (e.g. 0.999; 0: none; got \(d))" }
        if let m = microBatches {
            guard (1...ExactSum.maxTerms).contains(m) else { return "--micro-batches must be in 1...\(ExactSum.maxTerms) (got \(m))" }
            guard batchSize % m == 0 else {
                return "--micro-batches \(m) must divide --batch \(batchSize) (exact mode cuts each batch into equal micro-batches)"
            }
            if let k = exactSplitsGiven, !(1...256).contains(k) { return "--exact-splits must be in 1...256 (got \(k))" }
            if model == .sndcgan {
                return "--exact does not support sndcgan yet: its spectral norm moves once per forward, so a worker with more micro-batches would move it more often"
            }
        }
        if microBatches == nil && exactSplitsGiven != nil { return "--exact-splits applies to exact mode: add --exact" }
        if labelSmoothing != nil && noisyLabels {
            return "--label-smoothing and --noisy-labels both set the real targets: give one (0.9, or uniform in [0.7, 1.0])"
        }
        if (labelSmoothing != nil || noisyLabels) && !loss.loss.softRealLabels {
            let which = GANLoss.all.filter { $0.softRealLabels }.map { $0.name }.joined(separator: ", ")
            return "label smoothing and noisy labels apply to the losses with real targets (\(which)), not \(loss.rawValue)"
        }
        return nil
    }
}
