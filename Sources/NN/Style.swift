import Tensors

/// The tutorial's `AdaIN(num_features, w_dim)`: instance-normalise x, then scale and shift it
/// per channel by gamma, beta = style(w).chunk(2).
public final class AdaIN: Module {
    public let numFeatures: Int
    public let norm: InstanceNorm2d
    public let style: Linear

    public init(numFeatures: Int, wDim: Int, rng: inout RandomGenerator) {
        self.numFeatures = numFeatures
        norm = InstanceNorm2d(numFeatures)
        style = Linear(wDim, numFeatures * 2, rng: &rng)
        super.init()
        registerModule("norm", norm)
        registerModule("style", style)
    }

    public func forward(_ x: Tensor, _ w: Tensor) -> Tensor {
        let normalized = norm(x)
        let s = style(w)
        let parts = s.chunk(2, dim: 1)
        let gamma = parts[0].reshape([x.shape[0], numFeatures, 1, 1])
        let beta = parts[1].reshape([x.shape[0], numFeatures, 1, 1])
        return gamma * normalized + beta
    }

    public func callAsFunction(_ x: Tensor, _ w: Tensor) -> Tensor { forward(x, w) }
}

/// The tutorial's StyleGAN `MappingNetwork`: `numLayers` x (Linear, LeakyReLU(0.2)) from z to w,
/// as `mapping.0.weight`, `mapping.2.weight`, ...
public final class MappingNetwork: Module {
    public let mapping: Sequential

    public init(latentDim: Int, wDim: Int, numLayers: Int = 8, rng: inout RandomGenerator) {
        var layers: [Module] = []
        for i in 0..<numLayers {
            layers.append(Linear(i == 0 ? latentDim : wDim, wDim, rng: &rng))
            layers.append(LeakyReLU(0.2))
        }
        mapping = Sequential(layers)
        super.init()
        registerModule("mapping", mapping)
    }

    public override func forward(_ z: Tensor) -> Tensor { mapping(z) }
}
