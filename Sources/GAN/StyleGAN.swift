import NN
import Tensors

/// One synthesis layer: (upsample x2), 3x3 conv, LeakyReLU(0.2), AdaIN from w.
public final class StyleBlock: Module {
    public let upsample: Bool
    public let conv: Conv2d
    public let adain: AdaIN

    init(_ inCh: Int, _ outCh: Int, wDim: Int, upsample: Bool, rng: inout RandomGenerator) {
        self.upsample = upsample
        conv = Conv2d(inCh, outCh, kernelSize: 3, stride: 1, padding: 1, rng: &rng)
        adain = AdaIN(numFeatures: outCh, wDim: wDim, rng: &rng)
        super.init()
        registerModule("conv", conv)
        registerModule("adain", adain)
    }

    public func forward(_ x: Tensor, _ w: Tensor) -> Tensor {
        let h = upsample ? x.upsampleNearest(2) : x
        return adain(conv(h).leakyRelu(0.2), w)
    }
}

/// The synthesis network: a learned constant 4x4 input, one `StyleBlock` per resolution
/// (4, 8, ..., imageSize), each styled by its own w, and a 1x1 conv to image channels + tanh.
public final class SynthesisNetwork: Module {
    public let blocks: [StyleBlock]
    public let toRGB: Conv2d
    public let channels: [Int]

    init(wDim: Int, ngf: Int, nc: Int, imageSize: Int, rng: inout RandomGenerator) {
        let n = stages(imageSize)
        channels = (0...n).map { max((ngf * 4) >> $0, 8) }
        var bs: [StyleBlock] = []
        for i in 0...n {
            bs.append(StyleBlock(i == 0 ? channels[0] : channels[i - 1], channels[i], wDim: wDim, upsample: i > 0, rng: &rng))
        }
        blocks = bs
        toRGB = Conv2d(channels[n], nc, kernelSize: 1, rng: &rng)
        super.init()
        registerParameter("const", Tensor.ones([1, channels[0], 4, 4]))
        registerModule("blocks", ModuleList(bs))
        registerModule("to_rgb", toRGB)
    }

    /// One w per block (`ws.count == blocks.count`), each [N, wDim].
    public func synthesize(_ ws: [Tensor]) -> Tensor {
        precondition(ws.count == blocks.count, "synthesis needs \(blocks.count) styles, got \(ws.count)")
        let n = ws[0].shape[0]
        var h = parameter("const").expand([n, channels[0], 4, 4])
        for (b, w) in zip(blocks, ws) { h = b.forward(h, w) }
        return toRGB(h).tanh()
    }
}

/// StyleGAN's generator as the tutorial sketches it: an 8-layer mapping network z -> w, and a
/// synthesis network from a learned constant with AdaIN at every layer. Style mixing feeds w1 to
/// the layers before a crossover and w2 to the rest (coarse styles from w1, fine from w2).
public final class StyleGenerator: Module, GeneratorModel {
    public let latentDim: Int
    public let wDim: Int
    public let mapping: MappingNetwork
    public let synthesis: SynthesisNetwork

    public init(latentDim: Int = 100, wDim: Int = 128, mappingLayers: Int = 8, ngf: Int = 64, nc: Int = 1,
                imageSize: Int = 32, rng: inout RandomGenerator) {
        self.latentDim = latentDim
        self.wDim = wDim
        mapping = MappingNetwork(latentDim: latentDim, wDim: wDim, numLayers: mappingLayers, rng: &rng)
        synthesis = SynthesisNetwork(wDim: wDim, ngf: ngf, nc: nc, imageSize: imageSize, rng: &rng)
        super.init()
        registerModule("mapping", mapping)
        registerModule("synthesis", synthesis)
    }

    public var numLayers: Int { synthesis.blocks.count }

    public func generate(_ z: Tensor) -> Tensor {
        let w = mapping(z)
        return synthesis.synthesize(Array(repeating: w, count: numLayers))
    }

    /// Layers `0..<crossover` take their style from z1, the rest from z2.
    public func mix(_ z1: Tensor, _ z2: Tensor, crossover: Int) -> Tensor {
        precondition(crossover >= 0 && crossover <= numLayers, "crossover \(crossover) outside 0...\(numLayers)")
        let w1 = mapping(z1), w2 = mapping(z2)
        return synthesis.synthesize((0..<numLayers).map { $0 < crossover ? w1 : w2 })
    }

    public override func forward(_ z: Tensor) -> Tensor { generate(z) }
}
