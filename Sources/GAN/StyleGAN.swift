import NN
import Tensors

/// StyleGAN's mapping network z -> w as the paper trains it: z normalised (pixel norm), then
/// `numLayers` x (equalised-learning-rate Linear at 0.01x the learning rate, LeakyReLU(0.2)),
/// as `mapping.0.weight`, `mapping.2.weight`, ... The tutorial's `MappingNetwork` (NN/Style.swift)
/// has the same layers at PyTorch's default init, where w barely depends on z.
public final class StyleMappingNetwork: Module {
    public let pixelNorm = PixelNorm()
    public let mapping: Sequential

    public init(latentDim: Int, wDim: Int, numLayers: Int = 8, lrMul: Float = 0.01, rng: inout RandomGenerator) {
        var layers: [Module] = []
        for i in 0..<numLayers {
            layers.append(EqualizedLinear(i == 0 ? latentDim : wDim, wDim, gain: Float(2).squareRoot(), lrMul: lrMul, rng: &rng))
            layers.append(LeakyReLU(0.2))
        }
        mapping = Sequential(layers)
        super.init()
        registerModule("mapping", mapping)
    }

    public override func forward(_ z: Tensor) -> Tensor { mapping(pixelNorm(z)) }
}

/// One synthesis layer: (a 4x4 stride-2 transposed convolution, doubling the side; none in the
/// first block, whose input is already 4x4), the noise input, AdaIN from w with its scale centred
/// on 1, ReLU. The convolution is DCGAN's, at DCGAN's init: the paper's 3x3 convolutions after a
/// nearest upsample, at equalised learning rate, cost 2.7x a DCGAN step and trained far slower
/// here (bench/RESULTS.md, "StyleGAN recipes tried").
public final class StyleBlock: Module {
    public let conv: ConvTranspose2d?
    public let noise: NoiseInjection
    public let adain: StyleModulation

    init(_ inCh: Int, _ outCh: Int, wDim: Int, upsample: Bool, rng: inout RandomGenerator) {
        conv = upsample ? ConvTranspose2d(inCh, outCh, kernelSize: 4, stride: 2, padding: 1, bias: false, rng: &rng) : nil
        noise = NoiseInjection(channels: outCh)
        adain = StyleModulation(numFeatures: outCh, wDim: wDim, rng: &rng)
        super.init()
        if let c = conv { registerModule("conv", c) }
        registerModule("noise", noise)
        registerModule("adain", adain)
    }

    public func forward(_ x: Tensor, _ w: Tensor, noise n: Tensor) -> Tensor {
        adain(noise.forward(conv.map { $0(x) } ?? x, noise: n), w).relu()
    }
}

/// The synthesis network, DCGAN's generator with AdaIN in BatchNorm's place: the first style's w
/// projected to 4x4 by a transposed convolution (as DCGAN projects z), then one `StyleBlock` per
/// resolution 4, 8, ..., imageSize / 2 (channels ngf * 2^(n-1) down to ngf), each styled by its
/// own w and fed its own noise, and a last transposed convolution to image channels + tanh.
/// The paper starts from a learned constant instead of a projection of w; measured here, the
/// constant trained far slower in the same time (bench/RESULTS.md, "StyleGAN recipes tried").
public final class SynthesisNetwork: Module {
    public let input: ConvTranspose2d
    public let blocks: [StyleBlock]
    public let toRGB: ConvTranspose2d
    public let channels: [Int]
    /// The side of each block's output (4, 8, ..., imageSize / 2).
    public let resolutions: [Int]

    init(wDim: Int, ngf: Int, nc: Int, imageSize: Int, rng: inout RandomGenerator) {
        let n = stages(imageSize)
        channels = (0..<n).map { (ngf << (n - 1)) >> $0 }
        resolutions = (0..<n).map { 4 << $0 }
        input = ConvTranspose2d(wDim, channels[0], kernelSize: 4, stride: 1, padding: 0, bias: false, rng: &rng)
        var bs: [StyleBlock] = []
        for i in 0..<n {
            bs.append(StyleBlock(i == 0 ? channels[0] : channels[i - 1], channels[i], wDim: wDim, upsample: i > 0, rng: &rng))
        }
        blocks = bs
        toRGB = ConvTranspose2d(channels[n - 1], nc, kernelSize: 4, stride: 2, padding: 1, bias: false, rng: &rng)
        super.init()
        registerModule("input", input)
        registerModule("blocks", ModuleList(bs))
        registerModule("to_rgb", toRGB)
        dcganInit(self, rng: &rng)
    }

    /// One w per block (`ws.count == blocks.count`), each [N, wDim] (the first also feeds the
    /// input projection), and one noise image per block ([N, 1, r, r] at the block's side r).
    public func synthesize(_ ws: [Tensor], noise: [Tensor]) -> Tensor {
        precondition(ws.count == blocks.count, "synthesis needs \(blocks.count) styles, got \(ws.count)")
        precondition(noise.count == blocks.count, "synthesis needs \(blocks.count) noise inputs, got \(noise.count)")
        let (n, d) = (ws[0].shape[0], ws[0].shape[1])
        var h = input(ws[0].reshape([n, d, 1, 1]))
        for (b, (w, nz)) in zip(blocks, zip(ws, noise)) { h = b.forward(h, w, noise: nz) }
        return toRGB(h).tanh()
    }
}

/// StyleGAN's generator: a mapping network z -> w and a synthesis network with AdaIN at every
/// layer, with the paper's remedies that measured well here (normalised z, equalised learning
/// rate with the mapping network at 0.01x, AdaIN's scale centred on 1, per-layer noise inputs).
/// Style mixing feeds w1 to the layers before a crossover and w2 to the rest (coarse
/// styles from w1, fine from w2).
///
/// The noise inputs are drawn from a generator keyed by the bits of each sample's latent, so an
/// image is a function of its z alone: samples are reproducible, and one process and N workers
/// (each with its shard of the batch) draw the same noise for the same sample.
public final class StyleGenerator: Module, GeneratorModel {
    public let latentDim: Int
    public let wDim: Int
    public let mapping: StyleMappingNetwork
    public let synthesis: SynthesisNetwork
    /// Truncation (psi < 1 pulls every w towards the mean w, trading variety for typical
    /// images); 1 is none. Applied when sampling in eval mode only.
    public var truncation: Float = 1

    public init(latentDim: Int = 100, wDim: Int = 128, mappingLayers: Int = 8, ngf: Int = 64, nc: Int = 1,
                imageSize: Int = 32, rng: inout RandomGenerator) {
        self.latentDim = latentDim
        self.wDim = wDim
        mapping = StyleMappingNetwork(latentDim: latentDim, wDim: wDim, numLayers: mappingLayers, rng: &rng)
        synthesis = SynthesisNetwork(wDim: wDim, ngf: ngf, nc: nc, imageSize: imageSize, rng: &rng)
        super.init()
        registerModule("mapping", mapping)
        registerModule("synthesis", synthesis)
    }

    public var numLayers: Int { synthesis.blocks.count }

    /// Each sample's noise inputs, one [N, 1, r, r] per block, from its latent's bits.
    public func noiseInputs(for z: Tensor) -> [Tensor] {
        let (n, d) = (z.shape[0], z.shape[1])
        let zs = z.toArray()
        let keys: [UInt64] = (0..<n).map { i in
            var h: UInt64 = 0xCBF2_9CE4_8422_2325   // FNV-1a over the float bits
            for k in 0..<d { h = (h ^ UInt64(zs[i * d + k].bitPattern)) &* 0x0000_0100_0000_01B3 }
            return h
        }
        return synthesis.resolutions.enumerated().map { b, r in
            let t = Tensor(uninitializedShape: [n, 1, r, r])
            for i in 0..<n {
                var g = RandomGenerator(seed: keys[i], stream: 0x401 + UInt64(b))
                for k in 0..<(r * r) { t.data[i * r * r + k] = g.normal() }
            }
            return t
        }
    }

    /// The mean w over 4,096 fixed latents (the centre truncation pulls towards).
    public func meanW() -> Tensor {
        withNoGrad { mapping(latents(seed: 0x7A, .fixedNoise, step: 0x7A, indices: Array(0..<4096), dim: latentDim)).mean(dims: [0], keepDim: true) }
    }

    func styles(_ z: Tensor) -> Tensor {
        let w = mapping(z)
        guard truncation != 1 && !training else { return w }
        let avg = meanW()
        return avg + (w - avg) * truncation
    }

    public func generate(_ z: Tensor) -> Tensor {
        let w = styles(z)
        return synthesis.synthesize(Array(repeating: w, count: numLayers), noise: noiseInputs(for: z))
    }

    /// Layers `0..<crossover` take their style from z1, the rest from z2 (noise from z1).
    public func mix(_ z1: Tensor, _ z2: Tensor, crossover: Int) -> Tensor {
        precondition(crossover >= 0 && crossover <= numLayers, "crossover \(crossover) outside 0...\(numLayers)")
        let w1 = styles(z1), w2 = styles(z2)
        return synthesis.synthesize((0..<numLayers).map { $0 < crossover ? w1 : w2 }, noise: noiseInputs(for: z1))
    }

    /// The style-mixing grid's cells: image `i * cols + j` takes its coarse styles (layers before
    /// `crossover`) from row latent i and its fine styles from column latent j.
    public func mixingGrid(rows za: Tensor, columns zb: Tensor, crossover: Int) -> Tensor {
        let (r, c, d) = (za.shape[0], zb.shape[0], za.shape[1])
        let rowsA = concat((0..<r).map { i in za.narrow(0, i, 1).expand([c, d]) }, dim: 0)
        let colsB = concat(Array(repeating: zb, count: r), dim: 0)
        return mix(rowsA, colsB, crossover: crossover)
    }

    public override func forward(_ z: Tensor) -> Tensor { generate(z) }
}

/// StyleGAN's discriminator at these sizes: the DCGAN discriminator's strided 4x4 convolutions
/// with LeakyReLU(0.2) (DCGAN's init, no bias on the first and last), without BatchNorm (biases
/// instead, PyTorch's default init), and the paper's minibatch standard deviation as an extra
/// feature map before the last convolution. Without
/// BatchNorm's batch coupling on either side the generator collapsed to one digit (FID 690 in
/// 150 s); the minibatch feature is what lets D see a batch without variety (9.5).
public final class StyleDiscriminator: Module, DiscriminatorModel {
    public let main: Sequential
    public let stddev: MinibatchStdDev
    public let last: Conv2d

    public init(nc: Int = 1, ndf: Int = 64, imageSize: Int = 32, groupSize: Int = 4, rng: inout RandomGenerator) {
        let n = stages(imageSize)
        var layers: [Module] = [Conv2d(nc, ndf, kernelSize: 4, stride: 2, padding: 1, bias: false, rng: &rng), LeakyReLU(0.2)]
        var ch = ndf
        for _ in 0..<(n - 1) {
            layers += [Conv2d(ch, ch * 2, kernelSize: 4, stride: 2, padding: 1, rng: &rng), LeakyReLU(0.2)]
            ch *= 2
        }
        main = Sequential(layers)
        stddev = MinibatchStdDev(groupSize: groupSize)
        last = Conv2d(ch + 1, 1, kernelSize: 4, stride: 1, padding: 0, bias: false, rng: &rng)
        super.init()
        registerModule("main", main)
        registerModule("last", last)
        dcganInit(self, rng: &rng)
    }

    public func score(_ x: Tensor) -> Tensor { last(stddev(main(x))).reshape([-1, 1]) }
    public override func forward(_ x: Tensor) -> Tensor { score(x).sigmoid() }
}
