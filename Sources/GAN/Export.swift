import Datasets
import Foundation
import NN
import Tensors

/// Weights in and out of PyTorch: a model's `state_dict` as a safetensors file with PyTorch's
/// keys, shapes and dtypes (float32, int64 for BatchNorm's `num_batches_tracked`), so that
/// `model.load_state_dict(safetensors.torch.load_file(f), strict=True)` works on the tutorial's
/// class for the same structure; and back, from a file `safetensors.torch.save_file` wrote.
public enum TorchInterop {
    /// Metadata keys of exported files.
    public static let configKey = "ringgan.config"
    public static let stepKey = "ringgan.step"
    public static let roleKey = "ringgan.role"
    public static let classKey = "pytorch.class"

    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
        public init(_ d: String) { description = d }
    }

    /// The tutorial's PyTorch class with the same `state_dict` as this config's generator or
    /// discriminator (nil where the tutorial has none; the keys are still PyTorch-style).
    public static func pytorchClass(_ c: GANConfig, discriminator: Bool) -> String? {
        if c.progressive { return nil }
        switch (c.model, discriminator) {
        case (.mlp, false): return "Generator(latent_dim=\(c.latentDim), img_shape=(\(c.nc), 28, 28))"
        case (.mlp, true): return "Discriminator(img_shape=(\(c.nc), 28, 28))"
        case (.dcgan, false) where c.imageSize == 64: return "DCGANGenerator(latent_dim=\(c.latentDim), ngf=\(c.ngf), nc=\(c.nc))"
        case (.dcgan, true) where c.imageSize == 64: return "DCGANDiscriminator(nc=\(c.nc), ndf=\(c.ndf))"
        case (.sndcgan, true) where c.imageSize == 64: return "SNDiscriminator(nc=\(c.nc), ndf=\(c.ndf))"
        case (.dcgan, false) where c.imageSize == 32: return "DCGAN32Generator(nz=\(c.latentDim), ngf=\(c.ngf), nc=\(c.nc))"
        case (.dcgan, true) where c.imageSize == 32: return "DCGAN32Discriminator(nc=\(c.nc), ndf=\(c.ndf))"
        default: return nil
        }
    }

    static func metadata(_ c: GANConfig, step: Int, role: String, discriminator: Bool) -> [String: String] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var m = ["format": "pt", roleKey: role, stepKey: String(step)]
        if let json = try? enc.encode(c) { m[configKey] = String(decoding: json, as: UTF8.self) }
        if let cls = pytorchClass(c, discriminator: discriminator) { m[classKey] = cls }
        return m
    }

    /// Writes `module`'s state_dict (parameters and buffers, PyTorch's order and keys).
    public static func write(_ module: Module, config: GANConfig, step: Int, discriminator: Bool = false, to path: String) throws {
        let sd = module.stateDict().map { (name: $0.0, tensor: $0.1) }
        try Safetensors.write(sd, metadata: metadata(config, step: step, role: discriminator ? "discriminator" : "generator",
                                                     discriminator: discriminator),
                              dtype: { Safetensors.torchDType(forKey: $0) }, to: path)
    }

    /// A generator config read from an exported file's metadata, or guessed from the keys and
    /// shapes of the tutorial's `Generator` (mlp: `model.*`) and `DCGANGenerator` (dcgan:
    /// `main.*`), or nil when neither fits.
    public static func inferGeneratorConfig(tensors: [String: Tensor], metadata: [String: String]) -> GANConfig? {
        if let json = metadata[configKey], let c = try? JSONDecoder().decode(GANConfig.self, from: Data(json.utf8)) { return c }
        var c = GANConfig()
        func indexed(_ prefix: String) -> [(Int, Tensor)] {
            tensors.compactMap { k, t -> (Int, Tensor)? in
                guard k.hasPrefix(prefix + "."), k.hasSuffix(".weight") else { return nil }
                let mid = k.dropFirst(prefix.count + 1).dropLast(".weight".count)
                guard let i = Int(mid) else { return nil }
                return (i, t)
            }.sorted { $0.0 < $1.0 }
        }
        let mlp = indexed("model").filter { $0.1.rank == 2 }
        if let first = mlp.first, let last = mlp.last, mlp.count == 5, last.1.shape[0] % (28 * 28) == 0 {
            c.model = .mlp
            c.imageSize = 28
            c.latentDim = first.1.shape[1]
            c.nc = last.1.shape[0] / (28 * 28)
            return c
        }
        let convs = indexed("main").filter { $0.1.rank == 4 }
        if let first = convs.first, let last = convs.last, convs.count >= 3, convs.count <= 6 {
            c.model = .dcgan
            c.imageSize = 4 << (convs.count - 1)
            c.latentDim = first.1.shape[0]
            c.ngf = last.1.shape[0]
            c.nc = last.1.shape[1]
            guard first.1.shape[1] == c.ngf << (convs.count - 2) else { return nil }
            return c
        }
        return nil
    }

    /// Models for `config` with the generator (and, if given, the discriminator) loaded
    /// strictly from safetensors state dicts.
    public static func load(config: GANConfig, generator g: [String: Tensor], discriminator d: [String: Tensor]?,
                            generatorPath: String, discriminatorPath: String?) throws -> GANModels {
        let models = GANModels(config: config)
        do { try models.generator.loadStateDict(g); try models.emaGenerator?.loadStateDict(g) } catch {
            throw Error("\(generatorPath) does not fit a \(describe(config)) generator: \(error)")
        }
        if let d {
            do { try models.discriminator.loadStateDict(d) } catch {
                throw Error("\(discriminatorPath ?? "discriminator") does not fit a \(describe(config)) discriminator: \(error)")
            }
        }
        return models
    }

    public static func describe(_ c: GANConfig) -> String {
        var s = c.model.rawValue + (c.progressive ? " (progressive)" : "")
        s += " (latent \(c.latentDim), nc \(c.nc)"
        if c.model != .mlp { s += ", image size \(c.imageSize), ngf \(c.ngf), ndf \(c.ndf)" }
        if c.model == .stylegan { s += ", w \(c.wDim), mapping layers \(c.mappingLayers)" }
        return s + ")"
    }

    /// A checkpoint of `models` at `step` with fresh optimizer state (and `sampler`'s position).
    public static func checkpoint(_ models: GANModels, step: Int, sampler: EpochSampler) -> Checkpoint {
        var ts: [(String, Tensor)] = []
        ts += models.generator.stateDict(prefix: "G.").map { ($0.0, $0.1.copy()) }
        ts += models.discriminator.stateDict(prefix: "D.").map { ($0.0, $0.1.copy()) }
        ts += models.optG.stateTensors().map { ("optG." + $0.0, $0.1.copy()) }
        ts += models.optD.stateTensors().map { ("optD." + $0.0, $0.1.copy()) }
        return Checkpoint(config: models.config, step: step, sampler: sampler, tensors: ts.map { (name: $0.0, tensor: $0.1) })
    }
}
