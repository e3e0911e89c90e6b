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
    /// The wall-clock budget the recipe was chosen for; used as `--time-limit` unless one is given.
    public var timeLimit: TimeInterval?

    public static let all: [TrainingPreset] = [.fast]

    public static func named(_ name: String) -> TrainingPreset? { all.first { $0.name == name } }

    /// The values this preset gives a config (before any explicit flag).
    public func apply(to c: inout GANConfig) {
        c.model = model; c.loss = loss; c.imageSize = imageSize
        c.ngf = ngf; c.ndf = ndf; c.latentDim = latentDim
        c.batchSize = batchSize; c.steps = steps
        c.lrG = lrG; c.lrD = lrD; c.beta1 = beta1; c.beta2 = beta2
        c.gEMA = gEMA
    }
}

extension TrainingPreset {
    /// PLACEHOLDER until measured.
    public static let fast = TrainingPreset(
        name: "fast", summary: "the lowest FID in 5 minutes on 2 cores",
        model: .dcgan, loss: .bce, imageSize: 32, ngf: 32, ndf: 32, latentDim: 100, batchSize: 32, steps: 6000,
        lrG: 2e-4, lrD: 2e-4, beta1: 0.5, beta2: 0.999, gEMA: 0.999, timeLimit: 300)
}
