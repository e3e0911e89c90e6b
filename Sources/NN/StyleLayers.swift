import Tensors

// The layers of StyleGAN as the paper trains it (Karras et al. 2019, and ProGAN's equalised
// learning rate), beside the tutorial's sketch (Style.swift: MappingNetwork, AdaIN), which keeps
// its exact PyTorch semantics. The tutorial's sketch at PyTorch's default init ignores its latent:
// each of the 8 mapping layers shrinks the signal (~0.4x), so w is nearly the same for every z,
// and AdaIN's raw scale starts near 0. These are the remedies.

/// `x / sqrt(mean(x^2 over dim 1) + eps)`: StyleGAN's normalisation of z (and ProGAN's pixel norm).
public final class PixelNorm: Module {
    public let eps: Float
    public init(eps: Float = 1e-8) { self.eps = eps; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x / (x.squared().mean(dims: [1], keepDim: true) + eps).sqrt() }
}

/// A linear layer with equalised learning rate: the stored weight is N(0, 1 / lrMul^2) and the
/// forward pass uses weight * gain / sqrt(fan_in) * lrMul (bias * lrMul), so every layer's
/// weights move at the same relative speed under Adam whatever their fan-in, and `lrMul` (0.01 in
/// StyleGAN's mapping network) lowers this layer's effective learning rate by that factor.
public final class EqualizedLinear: Module {
    public let inFeatures: Int, outFeatures: Int
    public let scale: Float, lrMul: Float

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, biasInit: Float = 0, gain: Float = 1,
                lrMul: Float = 1, rng: inout RandomGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.lrMul = lrMul
        scale = gain / Float(inFeatures).squareRoot() * lrMul
        super.init()
        registerParameter("weight", Tensor.randn([outFeatures, inFeatures], generator: &rng) * (1 / lrMul))
        if bias { registerParameter("bias", Tensor.full([outFeatures], biasInit / lrMul)) }
    }

    /// The weight the forward pass uses.
    public var effectiveWeight: Tensor { parameter("weight") * scale }

    public override func forward(_ x: Tensor) -> Tensor {
        linear(x, effectiveWeight, hasParameter("bias") ? parameter("bias") * lrMul : nil)
    }
}

/// The minibatch standard deviation of ProGAN and StyleGAN's discriminators: the batch is split
/// into groups of `groupSize` consecutive samples (the largest divisor of the batch not above
/// it), each feature's standard deviation over its group (biased, + 1e-8 under the root) is
/// averaged over channels and pixels, and that one number per group is appended to its samples
/// as an extra constant feature map. A generator that draws the same image for every latent
/// gives 0 there, which D learns to spot. Groups of consecutive samples stay inside each worker's
/// shard of a batch.
public final class MinibatchStdDev: Module {
    public let groupSize: Int

    public init(groupSize: Int = 4) {
        precondition(groupSize >= 1, "groupSize must be at least 1")
        self.groupSize = groupSize
        super.init()
    }

    /// The group size used for a batch of `n`.
    public func group(for n: Int) -> Int {
        var g = min(groupSize, n)
        while n % g != 0 { g -= 1 }
        return g
    }

    /// [N, C, H, W] -> [N, C + 1, H, W].
    public override func forward(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let g = group(for: n), m = n / g
        let y = x.reshape([m, g, c, h, w])
        let d = y - y.mean(dims: [1], keepDim: true)
        let s = (d.squared().mean(dims: [1], keepDim: true) + 1e-8).sqrt().mean(dims: [2, 3, 4], keepDim: true)
        return concat([x, s.expand([m, g, 1, h, w]).reshape([n, 1, h, w])], dim: 1)
    }
}

/// StyleGAN's per-layer noise input: `x + strength * noise`, one learned strength per channel
/// (starting at 0), the noise [N, 1, H, W] shared by the channels.
public final class NoiseInjection: Module {
    public let channels: Int

    public init(channels: Int) {
        self.channels = channels
        super.init()
        registerParameter("weight", Tensor.zeros([channels]))
    }

    public func forward(_ x: Tensor, noise: Tensor) -> Tensor {
        precondition(noise.shape == [x.shape[0], 1, x.shape[2], x.shape[3]], "noise \(noise.shape) for input \(x.shape)")
        return x + noise * parameter("weight").reshape([1, channels, 1, 1])
    }
}

/// StyleGAN's AdaIN: instance-normalise x, then `(1 + ys) * x_hat + yb` with (ys, yb) an
/// equalised-learning-rate affine map of w, so the scale starts centred on 1 (the tutorial's AdaIN
/// uses the raw affine output as the scale, which starts near 0).
public final class StyleModulation: Module {
    public let numFeatures: Int
    public let norm: InstanceNorm2d
    public let style: EqualizedLinear

    public init(numFeatures: Int, wDim: Int, rng: inout RandomGenerator) {
        self.numFeatures = numFeatures
        norm = InstanceNorm2d(numFeatures)
        style = EqualizedLinear(wDim, numFeatures * 2, gain: 1, rng: &rng)
        super.init()
        registerModule("norm", norm)
        registerModule("style", style)
    }

    public func forward(_ x: Tensor, _ w: Tensor) -> Tensor {
        let parts = style(w).chunk(2, dim: 1)
        let gamma = parts[0].reshape([x.shape[0], numFeatures, 1, 1]) + 1
        let beta = parts[1].reshape([x.shape[0], numFeatures, 1, 1])
        return gamma * norm(x) + beta
    }

    public func callAsFunction(_ x: Tensor, _ w: Tensor) -> Tensor { forward(x, w) }
}
