import Datasets
import Foundation
import Tensors

/// `gan import`'s pipeline: a generator (and discriminator) state_dict from safetensors into a
/// RingGAN checkpoint with fresh optimizer state.
public struct TorchImport {
    /// What the flags say about the model; every field overrides what the file says.
    public struct Overrides {
        public var model: ModelKind?
        /// The loss of later fine-tuning (its defaults are applied).
        public var loss: LossKind?
        public var imageSize: Int?
        public var ngf: Int?
        public var ndf: Int?
        public var nc: Int?
        public var latentDim: Int?
        public var wDim: Int?
        public var mappingLayers: Int?
        public var progressive = false
        public var dataset: String?
        public var dataDir: String?
        public var seed: UInt64?
        public init() {}

        /// Whether any flag describes the model itself.
        public var describeModel: Bool {
            model != nil || imageSize != nil || ngf != nil || nc != nil || latentDim != nil || wDim != nil || mappingLayers != nil
                || progressive
        }
    }

    /// Where the model's config came from.
    public enum ConfigSource: String { case flags = "the flags", metadata = "the file's metadata", weights = "the weights' keys and shapes" }

    public let config: GANConfig
    public let source: ConfigSource
    public let models: GANModels
    /// The checkpoint to write: step 0 (a progressive model's total steps, its growth complete).
    public let checkpoint: Checkpoint
    /// Why the data position is a placeholder (the data set was not found), or nil.
    public let dataWarning: String?

    /// The model's config, in order of precedence: the flags, the `ringgan.config` metadata of a
    /// `gan export` file, the keys and shapes of the tutorial's classes.
    public static func config(generator g: [String: Tensor], metadata: [String: String], path: String,
                              _ o: Overrides) throws -> (GANConfig, ConfigSource) {
        let fromFile = TorchInterop.inferGeneratorConfig(tensors: g, metadata: metadata)
        var c = fromFile ?? GANConfig()
        if fromFile == nil && o.model == nil {
            throw TorchInterop.Error("\(path): cannot tell the model from its keys (\(g.keys.sorted().prefix(4).joined(separator: ", "))...); "
                                     + "give --model and its sizes (--image-size, --ngf, --nc, --latent-dim)")
        }
        if let k = o.model {
            if k != c.model { c.imageSize = GANConfig.defaultImageSize(k) }
            c.model = k
        }
        if let k = o.loss {
            c.loss = k
            c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: false)
        }
        if let v = o.imageSize { c.imageSize = v }
        if let v = o.ngf { c.ngf = v }
        if let v = o.ndf { c.ndf = v }
        if let v = o.nc { c.nc = v }
        if let v = o.latentDim { c.latentDim = v }
        if let v = o.wDim { c.wDim = v }
        if let v = o.mappingLayers { c.mappingLayers = v }
        if o.progressive { c.progressive = true }
        if let v = o.dataset { c.dataset = v }
        if let v = o.dataDir { c.dataDir = v }
        if let v = o.seed { c.seed = v }
        if let problem = c.validate() { throw TorchInterop.Error(problem) }
        let source: ConfigSource = fromFile == nil ? .flags : (metadata[TorchInterop.configKey] != nil ? .metadata : .weights)
        return (c, source)
    }

    /// Reads `generatorPath` (and `discriminatorPath`), works out the config and loads the
    /// weights strictly into fresh models; the discriminator is fresh from the seed without one.
    public init(generatorPath: String, discriminatorPath: String?, overrides o: Overrides) throws {
        let g = try Safetensors.readFile(path: generatorPath)
        (config, source) = try TorchImport.config(generator: g.tensors, metadata: g.metadata, path: generatorPath, o)
        let d = try discriminatorPath.map { try Safetensors.read(path: $0).tensors }
        do {
            models = try TorchInterop.load(config: config, generator: g.tensors, discriminator: d, generatorPath: generatorPath,
                                           discriminatorPath: discriminatorPath)
        } catch {
            throw TorchInterop.Error("\(error)" + (o.describeModel ? "" : " (give --model and its sizes if the guess is wrong)"))
        }
        // The data position of later fine-tuning: the dataset's size when it is at hand.
        var count = config.batchSize
        var warning: String?
        do { count = try loadTrainingData(config).count } catch {
            warning = "data set not found (\(error)): the checkpoint samples and evaluates, but to fine-tune it with gan train --resume, import where the data set is (--dataset / --data)"
        }
        dataWarning = warning
        let step = config.progressive ? config.steps : 0
        checkpoint = TorchInterop.checkpoint(models, step: step,
                                             sampler: try EpochSampler(count: max(count, config.batchSize), batchSize: config.batchSize, seed: config.seed))
    }

    /// `runs/import-<file name>/checkpoints/step_<step>.rgan` in a run folder of its own: the
    /// folder is claimed (`RunFolder.claimUnique`), so a second import of the same file goes to
    /// `runs/import-<file name>-2` instead of over the first. Returns the run folder and the path.
    public static func claimDefaultCheckpointPath(generatorPath: String, step: Int) throws -> (folder: String, path: String) {
        let name = URL(fileURLWithPath: generatorPath).deletingPathExtension().lastPathComponent
        let folder = try RunFolder.claimUnique("runs/import-\(name)", marker: "checkpoints")
        return (folder, folder + "/checkpoints/" + String(format: "step_%08d.rgan", step))
    }

    /// Writes the checkpoint to `path`, creating its folder.
    public func write(to path: String) throws {
        var isDir: ObjCBool = false
        if path.isEmpty || path.hasSuffix("/") || (FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue) {
            throw TorchInterop.Error("checkpoint path '\(path)' is a folder; give a file name such as \(path.isEmpty ? "" : path.hasSuffix("/") ? path : path + "/")imported.rgan")
        }
        // (NSString's deletingLastPathComponent traps on "." in swift-corelibs-foundation.)
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try checkpoint.write(to: path)
    }
}
