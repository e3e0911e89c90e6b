import NN
import Tensors

/// A generator: latent vectors [N, latentDim] to images [N, nc, H, W] in [-1, 1].
public protocol GeneratorModel: Module {
    var latentDim: Int { get }
    func generate(_ z: Tensor) -> Tensor
}

/// A discriminator or critic: images to raw scores [N, 1] (logits for the BCE losses; the
/// tutorial's final Sigmoid is kept as a layer, without parameters, and applied inside the
/// numerically stable BCE-with-logits instead).
public protocol DiscriminatorModel: Module {
    func score(_ x: Tensor) -> Tensor
}

// MARK: the tutorial's MLP GAN

/// The tutorial's `Generator(latent_dim=100, img_shape=(1, 28, 28))`.
public final class MLPGenerator: Module, GeneratorModel {
    public let latentDim: Int
    public let imageShape: [Int]
    public let model: Sequential

    public init(latentDim: Int = 100, imageShape: [Int] = [1, 28, 28], rng: inout RandomGenerator) {
        self.latentDim = latentDim
        self.imageShape = imageShape
        func block(_ i: Int, _ o: Int, _ normalize: Bool, _ rng: inout RandomGenerator) -> [Module] {
            var layers: [Module] = [Linear(i, o, rng: &rng)]
            if normalize { layers.append(BatchNorm(o)) }
            layers.append(LeakyReLU(0.2, inplace: true))
            return layers
        }
        var layers: [Module] = []
        layers += block(latentDim, 128, false, &rng)
        layers += block(128, 256, true, &rng)
        layers += block(256, 512, true, &rng)
        layers += block(512, 1024, true, &rng)
        layers.append(Linear(1024, imageShape.reduce(1, *), rng: &rng))
        layers.append(Tanh())
        model = Sequential(layers)
        super.init()
        registerModule("model", model)
    }

    public func generate(_ z: Tensor) -> Tensor { model(z).reshape([z.shape[0]] + imageShape) }
    public override func forward(_ z: Tensor) -> Tensor { generate(z) }
}

/// The tutorial's `Discriminator(img_shape=(1, 28, 28))`.
public final class MLPDiscriminator: Module, DiscriminatorModel {
    public let model: Sequential

    public init(imageShape: [Int] = [1, 28, 28], rng: inout RandomGenerator) {
        model = Sequential([
            Flatten(), Linear(imageShape.reduce(1, *), 512, rng: &rng), LeakyReLU(0.2, inplace: true),
            Linear(512, 256, rng: &rng), LeakyReLU(0.2, inplace: true), Linear(256, 1, rng: &rng), Sigmoid(),
        ])
        super.init()
        registerModule("model", model)
    }

    public func score(_ x: Tensor) -> Tensor {
        var h = x
        for l in model.layers.dropLast() { h = l(h) }   // all but the Sigmoid
        return h
    }
    public override func forward(_ x: Tensor) -> Tensor { score(x).sigmoid() }
}

// MARK: DCGAN

/// Number of stride-2 stages between 4x4 and `imageSize` (32 -> 3, 64 -> 4).
func stages(_ imageSize: Int) -> Int {
    precondition([16, 32, 64, 128].contains(imageSize), "DCGAN image size must be 16, 32, 64 or 128, got \(imageSize)")
    var n = 0, s = 4
    while s < imageSize { s *= 2; n += 1 }
    return n
}

/// The tutorial's `DCGANGenerator` (at 64x64 exactly its layers; at 32x32 one stage fewer,
/// starting from ngf * 4): ConvTranspose2d(k4) + BatchNorm2d + ReLU per stage, Tanh output.
public final class DCGANGenerator: Module, GeneratorModel {
    public let latentDim: Int
    public let main: Sequential

    public init(latentDim: Int = 100, ngf: Int = 64, nc: Int = 1, imageSize: Int = 32, rng: inout RandomGenerator) {
        self.latentDim = latentDim
        let n = stages(imageSize)
        var ch = ngf << (n - 1)
        var layers: [Module] = [ConvTranspose2d(latentDim, ch, kernelSize: 4, stride: 1, padding: 0, bias: false, rng: &rng),
                                BatchNorm(ch), ReLU(inplace: true)]
        for _ in 0..<(n - 1) {
            layers += [ConvTranspose2d(ch, ch / 2, kernelSize: 4, stride: 2, padding: 1, bias: false, rng: &rng),
                       BatchNorm(ch / 2), ReLU(inplace: true)]
            ch /= 2
        }
        layers += [ConvTranspose2d(ch, nc, kernelSize: 4, stride: 2, padding: 1, bias: false, rng: &rng), Tanh()]
        main = Sequential(layers)
        super.init()
        registerModule("main", main)
        dcganInit(self, rng: &rng)
    }

    public func generate(_ z: Tensor) -> Tensor { main(z.reshape([z.shape[0], z.shape[1], 1, 1])) }
    public override func forward(_ z: Tensor) -> Tensor { generate(z) }
}

/// The tutorial's `DCGANDiscriminator` (and, with `spectral`, its `SNDiscriminator`: spectral
/// norm on every conv, no BatchNorm, no Sigmoid).
public final class DCGANDiscriminator: Module, DiscriminatorModel {
    public let main: Sequential
    public let spectral: Bool

    public init(nc: Int = 1, ndf: Int = 64, imageSize: Int = 32, spectral: Bool = false, rng: inout RandomGenerator) {
        self.spectral = spectral
        let n = stages(imageSize)
        func conv(_ i: Int, _ o: Int, _ s: Int, _ p: Int, _ rng: inout RandomGenerator) -> Module {
            let c = Conv2d(i, o, kernelSize: 4, stride: s, padding: p, bias: false, rng: &rng)
            return spectral ? spectralNorm(c, rng: &rng) : c
        }
        var layers: [Module] = [conv(nc, ndf, 2, 1, &rng), LeakyReLU(0.2, inplace: true)]
        var ch = ndf
        for _ in 0..<(n - 1) {
            layers.append(conv(ch, ch * 2, 2, 1, &rng))
            if !spectral { layers.append(BatchNorm(ch * 2)) }
            layers.append(LeakyReLU(0.2, inplace: true))
            ch *= 2
        }
        layers.append(conv(ch, 1, 1, 0, &rng))
        if !spectral { layers.append(Sigmoid()) }
        main = Sequential(layers)
        super.init()
        registerModule("main", main)
        if !spectral { dcganInit(self, rng: &rng) }
    }

    public func score(_ x: Tensor) -> Tensor {
        var h = x
        for l in main.layers where !(l is Sigmoid) { h = l(h) }
        return h.reshape([-1, 1])
    }
    public override func forward(_ x: Tensor) -> Tensor { spectral ? score(x) : score(x).sigmoid() }
}
