import Tensors

/// Shared by layers with a `weight` that spectral normalisation can take over.
open class WeightedModule: Module {
    /// Set by `spectralNorm(_:)`: the weight is then `weight_orig / sigma`.
    public internal(set) var spectral: SpectralNormState?

    /// The weight the forward pass uses.
    public var weight: Tensor {
        if let s = spectral { return s.weight(of: self) }
        return parameter("weight")
    }

    public var bias: Tensor? { hasParameter("bias") ? parameter("bias") : nil }
}

/// Uniform in [-bound, bound): PyTorch's default init (kaiming_uniform with a = sqrt(5), which
/// gives bound 1/sqrt(fan_in), and the same bound for the bias).
func uniformInit(_ shape: [Int], fanIn: Int, _ rng: inout RandomGenerator) -> Tensor {
    let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
    return Tensor.rand(shape, -bound, bound, generator: &rng)
}

/// `nn.Linear(in, out, bias)`.
public final class Linear: WeightedModule {
    public let inFeatures: Int, outFeatures: Int

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RandomGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        super.init()
        registerParameter("weight", uniformInit([outFeatures, inFeatures], fanIn: inFeatures, &rng))
        if bias { registerParameter("bias", uniformInit([outFeatures], fanIn: inFeatures, &rng)) }
    }

    public override func forward(_ x: Tensor) -> Tensor { linear(x, weight, bias) }
}

/// `nn.Conv2d(in, out, kernel, stride, padding, bias)` (square kernels).
public final class Conv2d: WeightedModule {
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, rng: inout RandomGenerator) {
        self.stride = stride
        self.padding = padding
        super.init()
        let fanIn = inChannels * kernelSize * kernelSize
        registerParameter("weight", uniformInit([outChannels, inChannels, kernelSize, kernelSize], fanIn: fanIn, &rng))
        if bias { registerParameter("bias", uniformInit([outChannels], fanIn: fanIn, &rng)) }
    }

    public override func forward(_ x: Tensor) -> Tensor { conv2d(x, weight, bias: bias, stride: stride, padding: padding) }
}

/// `nn.ConvTranspose2d(in, out, kernel, stride, padding, output_padding, bias)`; weight
/// [in, out, k, k], and PyTorch's init takes fan-in from weight dim 1 (out * k * k).
public final class ConvTranspose2d: WeightedModule {
    public let stride: Int, padding: Int, outputPadding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                outputPadding: Int = 0, bias: Bool = true, rng: inout RandomGenerator) {
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        super.init()
        let fanIn = outChannels * kernelSize * kernelSize
        registerParameter("weight", uniformInit([inChannels, outChannels, kernelSize, kernelSize], fanIn: fanIn, &rng))
        if bias { registerParameter("bias", uniformInit([outChannels], fanIn: fanIn, &rng)) }
    }

    public override func forward(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding)
    }
}

/// `nn.ReLU(inplace)`: with `inplace`, the result overwrites the input where that is safe
/// (`Tensor.leakyReluInPlace`).
public final class ReLU: Module {
    public let inplace: Bool
    public init(inplace: Bool = false) { self.inplace = inplace; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { inplace ? x.leakyReluInPlace(0) : x.relu() }
}

/// `nn.LeakyReLU(slope, inplace)`: with `inplace`, the result overwrites the input where that is
/// safe (`Tensor.leakyReluInPlace`).
public final class LeakyReLU: Module {
    public let slope: Float
    public let inplace: Bool
    public init(_ slope: Float = 0.01, inplace: Bool = false) { self.slope = slope; self.inplace = inplace; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { inplace ? x.leakyReluInPlace(slope) : x.leakyRelu(slope) }
}

public final class Tanh: Module {
    public override init() { super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.tanh() }
}

public final class Sigmoid: Module {
    public override init() { super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.sigmoid() }
}

/// `nn.Flatten()`: all dims after the first into one.
public final class Flatten: Module {
    public override init() { super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.flatten(from: 1) }
}

public final class Identity: Module {
    public override init() { super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x }
}

/// `nn.Upsample(scale_factor=f, mode='nearest')`.
public final class UpsampleNearest: Module {
    public let factor: Int
    public init(_ factor: Int = 2) { self.factor = factor; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.upsampleNearest(factor) }
}

/// `nn.AvgPool2d(f)`.
public final class AvgPool: Module {
    public let factor: Int
    public init(_ factor: Int = 2) { self.factor = factor; super.init() }
    public override func forward(_ x: Tensor) -> Tensor { x.avgPool(factor) }
}
