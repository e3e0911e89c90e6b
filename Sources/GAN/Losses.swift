import Tensors

/// The discriminator's loss on raw scores, per the tutorial.
public func discriminatorLoss(_ kind: LossKind, real: Tensor, fake: Tensor, realTarget: Tensor) -> Tensor {
    switch kind {
    case .bce, .bceSaturating:
        return bceWithLogits(real, target: realTarget) + bceWithLogits(fake, target: Tensor.zeros(fake.shape))
    case .wgan, .wganGP:
        return fake.mean() - real.mean()
    case .hinge:
        return (1 - real).relu().mean() + (1 + fake).relu().mean()
    }
}

/// The generator's loss on the discriminator's raw scores of generated images.
public func generatorLoss(_ kind: LossKind, fake: Tensor) -> Tensor {
    switch kind {
    case .bce:
        // Non-saturating: BCE(D(G(z)), 1) = -log D(G(z)).
        return bceWithLogits(fake, target: Tensor.ones(fake.shape))
    case .bceSaturating:
        // Saturating: -BCE(D(G(z)), 0) = log(1 - D(G(z))).
        return -bceWithLogits(fake, target: Tensor.zeros(fake.shape))
    case .wgan, .wganGP, .hinge:
        return -fake.mean()
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
