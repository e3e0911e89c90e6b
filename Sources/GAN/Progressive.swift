import NN
import Tensors

/// Where a progressive run is: resolution level (0 is 4x4) and fade-in alpha of that level.
public struct GrowthState: Equatable, Sendable {
    public var level: Int
    public var alpha: Float
    public var resolution: Int { 4 << level }

    public init(level: Int, alpha: Float) {
        self.level = level
        self.alpha = alpha
    }
}

/// ProGAN's schedule: level 0 trains alone, then each new level fades in (alpha 0 -> 1 over a
/// phase) and trains stable for a phase. `totalSteps` is split evenly over the 2 * levels + 1
/// phases.
public struct GrowthSchedule: Sendable {
    public let totalSteps: Int
    public let maxLevel: Int

    public init(totalSteps: Int, maxLevel: Int) {
        self.totalSteps = totalSteps
        self.maxLevel = maxLevel
    }

    public func state(at step: Int) -> GrowthState {
        let phases = 2 * maxLevel + 1
        let per = max(1, totalSteps / phases)
        let phase = min(step / per, phases - 1)
        if phase == 0 { return GrowthState(level: 0, alpha: 1) }
        let level = (phase + 1) / 2
        if phase % 2 == 1 {   // fading in
            return GrowthState(level: level, alpha: min(1, Float(step - phase * per) / Float(per)))
        }
        return GrowthState(level: level, alpha: 1)
    }
}

/// Channels at each level: ngf * 4 at 4x4, halving per level (at least 8).
func growthChannels(_ base: Int, _ levels: Int) -> [Int] { (0...levels).map { max((base * 4) >> $0, 8) } }

/// A DCGAN-style generator grown progressively: a transposed conv to 4x4, then per level an
/// upsample + 3x3 conv + BatchNorm + ReLU, with a 1x1 toRGB at every level; a new level fades
/// in over the upsampled output of the previous one.
public final class ProgressiveGenerator: Module, GeneratorModel {
    public let latentDim: Int
    public let maxLevel: Int
    public var growth = GrowthState(level: 0, alpha: 1)
    let blocks: [Sequential]
    let toRGB: [Conv2d]

    public init(latentDim: Int = 100, ngf: Int = 64, nc: Int = 1, imageSize: Int = 32, rng: inout RandomGenerator) {
        self.latentDim = latentDim
        maxLevel = stages(imageSize)
        let ch = growthChannels(ngf, maxLevel)
        var bs: [Sequential] = [Sequential(ConvTranspose2d(latentDim, ch[0], kernelSize: 4, bias: false, rng: &rng),
                                           BatchNorm(ch[0]), ReLU())]
        for l in 1...maxLevel {
            bs.append(Sequential(UpsampleNearest(2), Conv2d(ch[l - 1], ch[l], kernelSize: 3, padding: 1, bias: false, rng: &rng),
                                 BatchNorm(ch[l]), ReLU()))
        }
        blocks = bs
        toRGB = (0...maxLevel).map { Conv2d(ch[$0], nc, kernelSize: 1, rng: &rng) }
        super.init()
        registerModule("blocks", ModuleList(bs))
        registerModule("to_rgb", ModuleList(toRGB))
        dcganInit(self, rng: &rng)
    }

    public func generate(_ z: Tensor) -> Tensor {
        var h = blocks[0](z.reshape([z.shape[0], z.shape[1], 1, 1]))
        var prev = h
        for l in stride(from: 1, through: growth.level, by: 1) { prev = h; h = blocks[l](h) }
        let out = toRGB[growth.level](h)
        if growth.level > 0 && growth.alpha < 1 {
            let skip = toRGB[growth.level - 1](prev).upsampleNearest(2)
            return (skip * (1 - growth.alpha) + out * growth.alpha).tanh()
        }
        return out.tanh()
    }

    public override func forward(_ z: Tensor) -> Tensor { generate(z) }
}

/// The matching discriminator: fromRGB (1x1 conv + LeakyReLU) at every level, per level a 3x3
/// conv (+ BatchNorm unless spectral) + LeakyReLU + 2x average pool, and a final 4x4 conv to
/// one score; the new level fades in over the pooled input through the previous fromRGB.
public final class ProgressiveDiscriminator: Module, DiscriminatorModel {
    public let maxLevel: Int
    public var growth = GrowthState(level: 0, alpha: 1)
    let fromRGB: [Sequential]
    let blocks: [Sequential]
    let final: Conv2d

    public init(nc: Int = 1, ndf: Int = 64, imageSize: Int = 32, spectral: Bool = false, rng: inout RandomGenerator) {
        maxLevel = stages(imageSize)
        let ch = growthChannels(ndf, maxLevel)
        func conv(_ i: Int, _ o: Int, _ k: Int, _ p: Int, _ rng: inout RandomGenerator) -> Conv2d {
            let c = Conv2d(i, o, kernelSize: k, padding: p, bias: k == 1, rng: &rng)
            return spectral ? spectralNorm(c, rng: &rng) : c
        }
        fromRGB = (0...maxLevel).map { Sequential(conv(nc, ch[$0], 1, 0, &rng), LeakyReLU(0.2)) }
        var bs: [Sequential] = [Sequential()]   // level 0 has no block: the final conv reads 4x4
        for l in 1...maxLevel {
            var layers: [Module] = [conv(ch[l], ch[l - 1], 3, 1, &rng)]
            if !spectral { layers.append(BatchNorm(ch[l - 1])) }
            layers += [LeakyReLU(0.2), AvgPool(2)]
            bs.append(Sequential(layers))
        }
        blocks = bs
        final = conv(ch[0], 1, 4, 0, &rng)
        super.init()
        registerModule("from_rgb", ModuleList(fromRGB))
        registerModule("blocks", ModuleList(bs))
        registerModule("final", final)
        if !spectral { dcganInit(self, rng: &rng) }
    }

    public func score(_ x: Tensor) -> Tensor {
        precondition(x.shape[2] == growth.resolution, "progressive D at \(growth.resolution)x\(growth.resolution) got \(x.shape)")
        var h = fromRGB[growth.level](x)
        if growth.level > 0 {
            h = blocks[growth.level](h)
            if growth.alpha < 1 {
                let skip = fromRGB[growth.level - 1](x.avgPool(2))
                h = skip * (1 - growth.alpha) + h * growth.alpha
            }
            for l in stride(from: growth.level - 1, through: 1, by: -1) { h = blocks[l](h) }
        }
        return final(h).reshape([-1, 1])
    }

    public override func forward(_ x: Tensor) -> Tensor { score(x) }
}
