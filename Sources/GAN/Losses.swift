import Foundation
import NN
import Tensors

/// A GAN loss: everything that differs between losses, in one value. The trainer, the config,
/// the command lines and the coordinator ask the loss and never test which loss it is, so a new
/// loss is one `GANLoss` in `builtIn` below (or, outside this module, one `GANLoss.register`).
public struct GANLoss: Sendable {
    /// The optimizer both networks use.
    public enum OptimizerKind: Sendable { case adam, rmsprop }
    /// How mean discriminator scores (`StepMetrics.dReal`, `dFake`) are shown.
    public enum Scores: Sendable {
        /// sigmoid(D(x)): the scores are logits of a probability (the BCE losses).
        case probabilities
        /// D(x) as it is: a critic's unbounded score.
        case raw
    }
    /// Settings the loss implies where the user gave none (nil: GANConfig's default stays).
    public struct Defaults: Sendable {
        public var lr: Float?
        public var betas: (Float, Float)?
        public var nCritic: Int?
        public init(lr: Float? = nil, betas: (Float, Float)? = nil, nCritic: Int? = nil) {
            self.lr = lr
            self.betas = betas
            self.nCritic = nCritic
        }
    }

    /// The name configs, checkpoints and `--loss` use.
    public let name: String
    /// One line for help texts.
    public var about: String
    public var defaults: Defaults
    public var optimizer: OptimizerKind
    /// Clamp the discriminator's weights to [-clip, clip] after each of its steps (WGAN).
    public var clipsWeights: Bool
    /// Add `gpLambda` x the gradient penalty to the discriminator's loss (WGAN-GP).
    public var gradientPenalty: Bool
    public var scores: Scores
    /// Whether the real targets may be softened (`--label-smoothing`, `--noisy-labels`).
    public var softRealLabels: Bool
    /// Metrics beyond the losses and scores that the progress line and TensorBoard show.
    public var extraMetrics: [StepMetrics.Extra]
    /// The discriminator's loss on raw scores of real and generated images; `realTarget` holds
    /// the real images' targets (1, or softened) for losses with `softRealLabels`.
    public var discriminatorLoss: @Sendable (_ real: Tensor, _ fake: Tensor, _ realTarget: Tensor) -> Tensor
    /// The generator's loss on the discriminator's raw scores of generated images.
    public var generatorLoss: @Sendable (_ fake: Tensor) -> Tensor
    /// The discriminator's loss as a part on the real scores plus a part on the generated ones
    /// (`discriminatorLoss` is their sum), for a loss that is such a sum; nil for one that
    /// couples the two (a relativistic loss). With it, a data-parallel step computes the next
    /// step's real part while the generator's gradients are on the wire (`GANTrainer`).
    public var discriminatorParts: DiscriminatorParts?

    /// The two parts of a separable discriminator loss.
    public struct DiscriminatorParts: Sendable {
        public var real: @Sendable (_ real: Tensor, _ realTarget: Tensor) -> Tensor
        public var fake: @Sendable (_ fake: Tensor) -> Tensor
        public init(real: @escaping @Sendable (_ real: Tensor, _ realTarget: Tensor) -> Tensor,
                    fake: @escaping @Sendable (_ fake: Tensor) -> Tensor) {
            self.real = real
            self.fake = fake
        }
    }

    public init(name: String, about: String, defaults: Defaults = Defaults(), optimizer: OptimizerKind = .adam,
                clipsWeights: Bool = false, gradientPenalty: Bool = false, scores: Scores = .raw, softRealLabels: Bool = false,
                extraMetrics: [StepMetrics.Extra]? = nil,
                discriminatorLoss: @escaping @Sendable (_ real: Tensor, _ fake: Tensor, _ realTarget: Tensor) -> Tensor,
                generatorLoss: @escaping @Sendable (_ fake: Tensor) -> Tensor) {
        self.name = name
        self.about = about
        self.defaults = defaults
        self.optimizer = optimizer
        self.clipsWeights = clipsWeights
        self.gradientPenalty = gradientPenalty
        self.scores = scores
        self.softRealLabels = softRealLabels
        self.extraMetrics = extraMetrics ?? (gradientPenalty ? [.gradientPenalty] : [])
        self.discriminatorLoss = discriminatorLoss
        self.generatorLoss = generatorLoss
    }

    /// A loss whose discriminator loss is `parts.real + parts.fake`.
    public init(name: String, about: String, defaults: Defaults = Defaults(), optimizer: OptimizerKind = .adam,
                clipsWeights: Bool = false, gradientPenalty: Bool = false, scores: Scores = .raw, softRealLabels: Bool = false,
                extraMetrics: [StepMetrics.Extra]? = nil, discriminatorParts parts: DiscriminatorParts,
                generatorLoss: @escaping @Sendable (_ fake: Tensor) -> Tensor) {
        self.init(name: name, about: about, defaults: defaults, optimizer: optimizer, clipsWeights: clipsWeights,
                  gradientPenalty: gradientPenalty, scores: scores, softRealLabels: softRealLabels, extraMetrics: extraMetrics,
                  discriminatorLoss: { real, fake, target in parts.real(real, target) + parts.fake(fake) },
                  generatorLoss: generatorLoss)
        discriminatorParts = parts
    }

    public var kind: LossKind { LossKind(registered: name) }

    /// The optimizer of one network (`lr` its learning rate; Adam's betas from the config).
    public func makeOptimizer(_ group: ParameterGroup, lr: Float, config: GANConfig) -> Optimizer {
        switch optimizer {
        case .adam: return Adam(group, lr: lr, betas: (config.beta1, config.beta2))
        case .rmsprop: return RMSprop(group, lr: lr)
        }
    }
}

// MARK: - The losses

extension GANLoss {
    /// BCE on the real images' targets plus BCE on the generated ones' zeros.
    static let bceParts = DiscriminatorParts(real: { real, target in bceWithLogits(real, target: target) },
                                             fake: { fake in bceWithLogits(fake, target: Tensor.zeros(fake.shape)) })
    /// A critic's -E[D(x)] + E[D(G(z))] (the same bits as E[D(G(z))] - E[D(x)]).
    static let criticParts = DiscriminatorParts(real: { real, _ in -real.mean() }, fake: { fake in fake.mean() })

    /// The losses every build knows, in the order help texts list them.
    public static let builtIn: [GANLoss] = [
        GANLoss(name: "bce", about: "BCE; the generator's loss non-saturating, -log D(G(z)), as the tutorial trains",
                scores: .probabilities, softRealLabels: true, discriminatorParts: bceParts,
                // BCE(D(G(z)), 1) = -log D(G(z)).
                generatorLoss: { fake in bceWithLogits(fake, target: Tensor.ones(fake.shape)) }),
        GANLoss(name: "bce-saturating", about: "BCE with the original, saturating generator loss log(1 - D(G(z)))",
                scores: .probabilities, softRealLabels: true, discriminatorParts: bceParts,
                // -BCE(D(G(z)), 0) = log(1 - D(G(z))).
                generatorLoss: { fake in -bceWithLogits(fake, target: Tensor.zeros(fake.shape)) }),
        GANLoss(name: "wgan", about: "WGAN: critic loss -E[D(x)] + E[D(G(z))], weight clipping (--clip), RMSprop lr 5e-5, n_critic 5",
                defaults: Defaults(lr: 5e-5, nCritic: 5), optimizer: .rmsprop, clipsWeights: true, discriminatorParts: criticParts,
                generatorLoss: { fake in -fake.mean() }),
        GANLoss(name: "wgan-gp", about: "WGAN-GP: the WGAN losses plus --gp-lambda x the gradient penalty, Adam(0, 0.9) lr 1e-4, n_critic 5",
                defaults: Defaults(lr: 1e-4, betas: (0, 0.9), nCritic: 5), gradientPenalty: true, discriminatorParts: criticParts,
                generatorLoss: { fake in -fake.mean() }),
        GANLoss(name: "hinge", about: "hinge: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; generator -E[D(G(z))]",
                discriminatorParts: DiscriminatorParts(real: { real, _ in (1 - real).relu().mean() }, fake: { fake in (1 + fake).relu().mean() }),
                generatorLoss: { fake in -fake.mean() }),
    ]
}

extension LossKind {
    public static let bce = LossKind(registered: "bce")
    public static let bceSaturating = LossKind(registered: "bce-saturating")
    public static let wgan = LossKind(registered: "wgan")
    public static let wganGP = LossKind(registered: "wgan-gp")
    public static let hinge = LossKind(registered: "hinge")
}

// MARK: - Names and the registry

/// A loss by name, as configs and checkpoints store it (the raw value). Only registered names
/// make one, so a config naming an unknown loss does not decode.
public struct LossKind: RawRepresentable, Hashable, Codable, Sendable, CaseIterable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        guard GANLoss.named(rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    init(registered name: String) { rawValue = name }

    /// Every registered loss: the built-in ones, then those registered since.
    public static var allCases: [LossKind] { GANLoss.all.map { $0.kind } }

    /// The loss itself.
    public var loss: GANLoss {
        guard let l = GANLoss.named(rawValue) else { preconditionFailure("loss '\(rawValue)' is not registered") }
        return l
    }

    public var description: String { rawValue }
}

extension GANLoss {
    private final class Registry: @unchecked Sendable {
        let lock = NSLock()
        var losses = GANLoss.builtIn
    }
    private static let registry = Registry()

    /// Every loss this process knows: the built-in ones, then those registered since.
    public static var all: [GANLoss] {
        registry.lock.lock(); defer { registry.lock.unlock() }
        return registry.losses
    }

    public static func named(_ name: String) -> GANLoss? {
        registry.lock.lock(); defer { registry.lock.unlock() }
        return registry.losses.first { $0.name == name }
    }

    /// Makes a loss known by its name (a loss defined outside this module, e.g. in a test);
    /// registering a name again replaces that loss, except a built-in one, which cannot be replaced.
    @discardableResult
    public static func register(_ loss: GANLoss) -> LossKind {
        precondition(!builtIn.contains { $0.name == loss.name }, "'\(loss.name)' is a built-in loss")
        registry.lock.lock(); defer { registry.lock.unlock() }
        registry.losses.removeAll { $0.name == loss.name }
        registry.losses.append(loss)
        return loss.kind
    }

    /// The losses' names and what each is, one per line (help texts).
    public static var summary: String {
        all.map { "\($0.name): \($0.about)" }.joined(separator: "\n")
    }
}

/// The tutorial's `gradient_penalty`: ((||d critic(x_hat) / d x_hat||_2 - 1)^2).mean() with
/// x_hat = alpha * real + (1 - alpha) * fake, through double backward so its gradient with
/// respect to the critic's parameters is exact.
public func gradientPenalty(critic: (Tensor) -> Tensor, real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor {
    let xhat = (alpha * real + (1 - alpha) * fake).detach()
    xhat.requiresGrad = true
    let d = critic(xhat)
    let g = grad(of: [d], wrt: [xhat], gradOutputs: [Tensor.ones(d.shape)], createGraph: true)[0]
    let norms = g.reshape([real.shape[0], -1]).norm(dim: 1)
    return (norms - 1).pow(2).mean()
}
