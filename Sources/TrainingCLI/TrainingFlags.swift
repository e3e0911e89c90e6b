import ArgumentParser
import Foundation
import GAN

/// The flags that define a training run, shared by `gan train` and `gan-coordinator`.
///
/// Every numeric option of the three executables is parsed `.unconditional`: the token after the
/// flag is its value even when it begins with a dash, so `--steps -5` gets the range error
/// rather than "Missing value". Ranges are checked in `validate()` (a `ValidationError`: exit 64).
public struct TrainingFlags: ParsableArguments {
    public init() {}

    /// The flags alone make a valid config (ranges, names, combinations); the checks that need
    /// the data (the batch fits it) come when it is loaded (`GANConfig.checkFits`).
    public func validate() throws {
        _ = try config()
    }

    @Option(help: "A named recipe: \(TrainingPreset.all.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")). Flags given explicitly override its values.")
    public var preset: String?
    @Option(help: "Model: \(ModelKind.allCases.map { $0.rawValue }.joined(separator: ", ")) (default: dcgan).")
    public var model: String?
    @Option(help: "Loss: \(LossKind.allCases.map { $0.rawValue }.joined(separator: ", ")) (default: bce).")
    public var loss: String?
    @Option(parsing: .unconditional, help: "Image size: 28 for mlp; 16 (MNIST resized), 32 (MNIST padded) or 64 (MNIST resized) for the conv models (default: 28 for mlp, else 32).")
    public var imageSize: Int?
    @Option(parsing: .unconditional, help: "Generator feature maps (DCGAN's ngf; default: the preset's, else 16 for stylegan, 64 for the others).") public var ngf: Int?
    @Option(parsing: .unconditional, help: "Discriminator feature maps (DCGAN's ndf; default: the preset's, else 16 for stylegan, 64 for the others).") public var ndf: Int?
    @Option(parsing: .unconditional, help: "Image channels.") public var nc: Int = GANConfig().nc
    @Option(parsing: .unconditional, help: "Latent size (default: 100).") public var latentDim: Int?
    @Option(parsing: .unconditional, help: "StyleGAN: w size.") public var wDim: Int = GANConfig().wDim
    @Option(parsing: .unconditional, help: "StyleGAN: mapping network layers (default: the preset's, else 2; the tutorial's 8 collapses on these digits).") public var mappingLayers: Int?
    @Option(parsing: .unconditional, help: "StyleGAN: probability of style-mixing regularisation per step (default: the preset's, else 0; the tutorial's models mix at 0.5 when asked).")
    public var styleMixingProb: Float?
    @Flag(help: "Progressive growing (ProGAN schedule 4 -> 8 -> ... with fade-in) for dcgan / sndcgan.")
    public var progressive = false
    @Option(name: .customLong("steps"), parsing: .unconditional, help: "Training steps (each: n_critic D updates and one G update; default: the preset's, else 1000; with --resume the checkpoint's run length).")
    public var stepsGiven: Int?
    @Option(parsing: .unconditional, help: "Global batch size (default: the preset's, else 16 for stylegan, 64 for the others).") public var batch: Int?
    @Option(parsing: .unconditional, help: "Seed for weights, data order and every latent.") public var seed: UInt64 = GANConfig().seed
    @Option(parsing: .unconditional, help: "Learning rate of both networks (see --lr-g/--lr-d for TTUR).") public var lr: Float?
    @Option(parsing: .unconditional, help: "Generator learning rate (TTUR).") public var lrG: Float?
    @Option(parsing: .unconditional, help: "Discriminator learning rate (TTUR).") public var lrD: Float?
    @Option(parsing: .unconditional, help: "Adam beta1.") public var beta1: Float?
    @Option(parsing: .unconditional, help: "Adam beta2.") public var beta2: Float?
    @Option(parsing: .unconditional, help: "Discriminator updates per generator update.") public var nCritic: Int?
    @Option(parsing: .unconditional, help: "WGAN weight clipping bound.") public var clip: Float = GANConfig().clip
    @Option(parsing: .unconditional, help: "WGAN-GP penalty weight.") public var gpLambda: Float = GANConfig().gpLambda
    @Option(parsing: .unconditional, help: "One-sided label smoothing: real targets (e.g. 0.9); not with --noisy-labels.") public var labelSmoothing: Float?
    @Flag(help: "Noisy real labels, uniform in [0.7, 1.0] per sample; not with --label-smoothing.") public var noisyLabels = false
    @Option(parsing: .unconditional, help: "Keep an exponential moving average of G's weights with this decay (e.g. 0.999), ramped up over the first steps (min(decay, (1+step)/(10+step))), and sample, evaluate and export it (0: none, also against a preset's; the sampling commands' --raw-generator uses G).")
    public var gEma: Float?
    @Option(parsing: .unconditional, help: "Linear learning-rate decay: both learning rates as given for this fraction of --steps, then falling linearly to zero at --steps (e.g. 0.5; 0: from the first step; default: constant, or the preset's).")
    public var lrDecayFrom: Float?
    @Flag(help: "Exact mode: the same weights, bit for bit, on any number of workers (up to --micro-batches) and in one process, for the same seed, config and --threads per process. Each batch is cut into micro-batches whose gradients are summed exactly; BatchNorm normalises each micro-batch by itself. Costs step time: see README.")
    public var exact = false
    @Option(parsing: .unconditional, help: "Exact mode's micro-batches per batch (implies --exact; must divide --batch; default: gcd(batch, 8)).")
    public var microBatches: Int?
    @Option(parsing: .unconditional, help: "Exact mode: every engine loop is cut into this many parts, in every process (default 1: the workers' one thread each pay nothing; more lets a process use that many threads per loop). Part of the run's config: the bits depend on it.")
    public var exactSplits: Int?
    @Option(help: "Dataset: mnist (the 5,000 real digits set-up installs) or fashion-mnist.") public var dataset: String = GANConfig().dataset
    @Option(help: "A standard MNIST-format folder to read instead of the dataset's default (a relative path is kept in the run's config resolved to an absolute one).") public var data: String?

    /// The length of a resumed run: --steps when given (never less than the checkpoint's step),
    /// else the length of the run that wrote the checkpoint.
    public func resumedSteps(checkpointStep: Int, runSteps: Int) -> Int { max(stepsGiven ?? runSteps, checkpointStep) }

    /// `base` with the value of every training flag given explicitly on top (an option left out
    /// keeps `base`'s): what these flags ask of a run resumed with config `base`, to compare with
    /// it. Options with a default value (`--nc`, `--seed`, `--clip`, ...) and `--preset` cannot be
    /// told from their defaults and are left as `base` has them.
    public func given(over base: GANConfig) -> GANConfig {
        var c = base
        if let v = model.flatMap(ModelKind.init(rawValue:)) { c.model = v }
        if let v = loss.flatMap(LossKind.init(rawValue:)) { c.loss = v }
        if let v = imageSize { c.imageSize = v }
        if let v = ngf { c.ngf = v }
        if let v = ndf { c.ndf = v }
        if let v = latentDim { c.latentDim = v }
        if let v = mappingLayers { c.mappingLayers = v }
        if let v = styleMixingProb { c.styleMixingProb = v }
        if progressive { c.progressive = true }
        if let v = batch { c.batchSize = v }
        if let v = lr { c.lrG = v; c.lrD = v }
        if let v = lrG { c.lrG = v }
        if let v = lrD { c.lrD = v }
        if let v = beta1 { c.beta1 = v }
        if let v = beta2 { c.beta2 = v }
        if let v = nCritic { c.nCritic = v }
        if let v = labelSmoothing { c.labelSmoothing = v }
        if noisyLabels { c.noisyLabels = true }
        if let v = gEma { c.gEMA = v == 0 ? nil : v }
        if let v = lrDecayFrom { c.lrDecayFrom = v }
        if let v = resolvedData { c.dataDir = v }
        return c
    }

    /// --data as an absolute path, resolved against the current folder: the config keeps it
    /// (config.json, every checkpoint), and a run resumed from another folder (a coordinator
    /// restarted by a launcher elsewhere, `--resume auto`) must find the same data.
    public var resolvedData: String? {
        guard let d = data, !d.isEmpty else { return data }
        return URL(fileURLWithPath: d).standardizedFileURL.path
    }

    /// --steps as given, else the preset's, else 1000.
    public var steps: Int { stepsGiven ?? presetValue?.steps ?? GANConfig().steps }

    /// The preset named by --preset (nil when none was given or the name is unknown; `config`
    /// reports an unknown name).
    public var presetValue: TrainingPreset? { preset.flatMap(TrainingPreset.named) }

    /// The end of a run started at `started`: `timeLimit` (a --time-limit value) if given, else
    /// the preset's budget, else none. Throws a validation error for a malformed duration.
    public func deadline(timeLimit: String?, from started: Date) throws -> Date? {
        if let t = timeLimit {
            guard let seconds = parseDuration(t) else {
                throw ValidationError("--time-limit '\(t)': give seconds (300) or a duration such as 45s, 5m, 1h30m")
            }
            return started.addingTimeInterval(seconds)
        }
        return presetValue?.timeLimit.map { started.addingTimeInterval($0) }
    }

    /// The run's config: the preset's values (if any), then every flag given explicitly, with the
    /// tutorial's defaults for the chosen loss where neither says otherwise; throws a validation
    /// error naming the flag that is wrong.
    public func config() throws -> GANConfig {
        var config = GANConfig()
        let p = try checkedPreset
        p?.apply(to: &config)
        let (m, l) = try modelAndLoss(p)
        // The preset's sizes belong to its model, its optimizer settings to its loss. Where no
        // preset speaks for the model, the model's own recipe does (StyleGAN's: style-fast's
        // values; the tutorial's widths, batch, 8 mapping layers and mixing collapse to one shape
        // on these digits, issue 27), never its step count or time limit. Where neither speaks,
        // GANConfig's defaults (the tutorial's values) do.
        let own = TrainingPreset.recipe(for: m)
        let presetModel = p?.model == m ? p : own
        let presetLoss = p?.loss == l ? p : (own?.loss == l ? own : nil)
        let d = GANConfig()
        config.model = m
        config.loss = l
        config.imageSize = imageSize ?? presetModel?.imageSize ?? GANConfig.defaultImageSize(m)
        config.ngf = ngf ?? presetModel?.ngf ?? d.ngf
        config.ndf = ndf ?? presetModel?.ndf ?? d.ndf
        config.nc = nc
        config.latentDim = latentDim ?? p?.latentDim ?? d.latentDim
        config.wDim = wDim
        config.mappingLayers = mappingLayers ?? presetModel?.mappingLayers ?? d.mappingLayers
        config.styleMixingProb = styleMixingProb ?? presetModel?.styleMixingProb ?? d.styleMixingProb
        config.progressive = progressive
        config.steps = steps; config.batchSize = batch ?? p?.batchSize ?? own?.batchSize ?? d.batchSize; config.seed = seed
        applyOptimizer(to: &config, presetLoss: presetLoss)
        config.clip = clip; config.gpLambda = gpLambda
        config.labelSmoothing = labelSmoothing; config.noisyLabels = noisyLabels
        if let g = gEma { config.gEMA = g == 0 ? nil : g } else { config.gEMA = p?.gEMA ?? own?.gEMA }
        config.dataset = dataset; config.dataDir = resolvedData
        if exact || microBatches != nil { config.microBatches = microBatches ?? GANConfig.defaultMicroBatches(batch: config.batchSize) }
        config.exactSplitsGiven = exactSplits
        if let problem = config.validate() { throw ValidationError(problem) }
        return config
    }

    /// `--preset`'s recipe (nil without the flag); an unknown name is a validation error.
    var checkedPreset: TrainingPreset? {
        get throws {
            guard let name = preset else { return nil }
            guard let found = TrainingPreset.named(name) else {
                throw ValidationError("unknown --preset '\(name)' (known: \(TrainingPreset.all.map { $0.name }.joined(separator: ", ")))")
            }
            return found
        }
    }

    /// The model and loss: the flags, else the preset's, else dcgan and the model's own recipe's
    /// loss (sndcgan's: hinge), else bce.
    func modelAndLoss(_ p: TrainingPreset?) throws -> (ModelKind, LossKind) {
        let d = GANConfig()
        let modelName = model ?? p?.model.rawValue ?? d.model.rawValue
        guard let m = ModelKind(rawValue: modelName) else {
            throw ValidationError("unknown --model '\(modelName)' (one of \(ModelKind.allCases.map { $0.rawValue }.joined(separator: ", ")))")
        }
        let lossName = loss ?? p?.loss.rawValue ?? TrainingPreset.recipe(for: m)?.loss.rawValue ?? d.loss.rawValue
        guard let l = LossKind(rawValue: lossName) else {
            throw ValidationError("unknown --loss '\(lossName)' (one of \(LossKind.allCases.map { $0.rawValue }.joined(separator: ", ")))")
        }
        return (m, l)
    }

    /// Learning rates, betas, critic steps and the decay: the recipe's for this loss, else
    /// GANConfig's, then the loss's own defaults where neither a flag nor a recipe gives them,
    /// then the flags.
    func applyOptimizer(to config: inout GANConfig, presetLoss: TrainingPreset?) {
        let d = GANConfig()
        let q = presetLoss
        config.lrG = q?.lrG ?? d.lrG; config.lrD = q?.lrD ?? d.lrD
        config.beta1 = q?.beta1 ?? d.beta1; config.beta2 = q?.beta2 ?? d.beta2
        config.nCritic = d.nCritic
        config.applyLossDefaults(lrGiven: lr != nil || lrG != nil || lrD != nil || q != nil,
                                 betasGiven: beta1 != nil || beta2 != nil || q != nil,
                                 nCriticGiven: nCritic != nil)
        if let v = lr { config.lrG = v; config.lrD = v }
        if let v = lrG { config.lrG = v }
        if let v = lrD { config.lrD = v }
        if let v = beta1 { config.beta1 = v }
        if let v = beta2 { config.beta2 = v }
        if let v = nCritic { config.nCritic = v }
        config.lrDecayFrom = lrDecayFrom ?? q?.lrDecayFrom
    }
}

/// Where a run writes and how often, shared by `gan train` and `gan-coordinator`.
public struct RunFlags: ParsableArguments {
    public init() {}

    @Option(help: "Folder for runs.") public var runsDir: String = "runs"
    @Option(help: "Run name: the folder <runs-dir>/<name>, which a new run must not share with another (default: model-loss-time, with -2, -3, ... when that is taken).")
    public var name: String?
    @Option(parsing: .unconditional, help: "Write a sample grid every K steps (0: only at the end).") public var sampleEvery: Int = RunCadence.sampleEvery
    @Option(parsing: .unconditional, help: "Write a checkpoint every K steps (0: only at the end).") public var checkpointEvery: Int = RunCadence.checkpointEvery
    @Option(parsing: .unconditional, help: "Checkpoints to keep.") public var keep: Int = RunCadence.keep
    @Option(parsing: .unconditional, help: "Write metrics.jsonl lines and TensorBoard scalars every K steps and at the end (gradient norms are measured only then).")
    public var logEvery: Int = RunCadence.logEvery
    @Option(help: "Continue from this checkpoint (its config is used, and training flags given that differ from it are named in a warning; --steps may extend the run). 'auto': the newest checkpoint of <runs-dir>/<name> that reads back whole, taken as if named here, or a fresh run from the flags when there is none (needs --name; what a restarted coordinator uses).")
    public var resume: String?

    public func validate() throws {
        guard sampleEvery >= 0 else { throw ValidationError("--sample-every must be 0 (only at the end) or more, got \(sampleEvery)") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be 0 (only at the end) or more, got \(checkpointEvery)") }
        guard (1...RunFlags.maxKeep).contains(keep) else { throw ValidationError("--keep must be in 1...\(RunFlags.maxKeep), got \(keep)") }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1, got \(logEvery)") }
        guard !runsDir.isEmpty else { throw ValidationError("--runs-dir must not be empty") }
        if let n = name, n.isEmpty { throw ValidationError("--name must not be empty") }
        if let n = name, n.contains("/") || n.contains("..") || n == "." {
            throw ValidationError("--name '\(n)' must be a plain folder name inside --runs-dir (no '/', no '..'); use --runs-dir to choose where runs go")
        }
        if let r = resume, r.isEmpty { throw ValidationError("--resume needs a checkpoint path or 'auto'") }
    }

    /// The most checkpoints `--keep` keeps.
    public static let maxKeep = 100_000

    /// The folder of a new run: `<runs-dir>/<name>`, the name defaulting to model-loss-time.
    public func newRunPath(_ config: GANConfig) -> String {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        return runsDir + "/" + (name ?? "\(config.model.rawValue)-\(config.loss.rawValue)-\(stamp)")
    }
}
