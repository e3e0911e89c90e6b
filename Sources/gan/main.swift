import ArgumentParser
import Data
import Foundation
import GAN
import NN
import Telemetry
import Tensors

struct Gan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "RingGAN: GAN training in Swift, from the tensor up.",
        subcommands: [Train.self, Sample.self, Interpolate.self, StyleMix.self, Evaluate.self, TrainClassifier.self, Info.self])
}

/// Prints to standard error and exits non-zero.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write("gan: error: \(message)\n".data(using: .utf8)!)
    exit(1)
}

func fmt(_ v: Float) -> String { String(format: "%.4f", v) }

struct ModelOptions: ParsableArguments {
    @Option(help: "Model: \(ModelKind.allCases.map { $0.rawValue }.joined(separator: ", ")).")
    var model: String = "dcgan"
    @Option(help: "Loss: \(LossKind.allCases.map { $0.rawValue }.joined(separator: ", ")).")
    var loss: String = "bce"
    @Option(help: "Image size: 28 for mlp; 32 (MNIST padded) or 64 (MNIST resized) for the conv models.")
    var imageSize: Int?
    @Option(help: "Generator feature maps (DCGAN's ngf).") var ngf: Int = 64
    @Option(help: "Discriminator feature maps (DCGAN's ndf).") var ndf: Int = 64
    @Option(help: "Image channels.") var nc: Int = 1
    @Option(help: "Latent size.") var latentDim: Int = 100
    @Option(help: "StyleGAN: w size.") var wDim: Int = 128
    @Option(help: "StyleGAN: mapping network layers.") var mappingLayers: Int = 8
    @Option(help: "StyleGAN: probability of style-mixing regularisation per step.") var styleMixingProb: Float = 0.5
    @Flag(help: "Progressive growing (ProGAN schedule 4 -> 8 -> ... with fade-in) for dcgan / sndcgan.")
    var progressive = false
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GAN in one process on real MNIST digits (or --dataset / --data).",
        discussion: """
        Writes runs/<name>/: config.json, samples/step_*.png (8x8 grids from fixed noise), \
        checkpoints/step_*.rgan (the newest --keep kept) and metrics.jsonl. Loss defaults follow the \
        tutorial: wgan uses RMSprop lr 5e-5, clipping 0.01, n_critic 5; wgan-gp uses Adam(0, 0.9), lr 1e-4, \
        lambda 10, n_critic 5; the others Adam(0.5, 0.999), lr 2e-4.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Training steps (each: n_critic D updates and one G update).") var steps: Int = 1000
    @Option(help: "Global batch size.") var batch: Int = 64
    @Option(help: "Seed for weights, data order and every latent.") var seed: UInt64 = 0
    @Option(help: "Learning rate of both networks (see --lr-g/--lr-d for TTUR).") var lr: Float?
    @Option(help: "Generator learning rate (TTUR).") var lrG: Float?
    @Option(help: "Discriminator learning rate (TTUR).") var lrD: Float?
    @Option(help: "Adam beta1.") var beta1: Float?
    @Option(help: "Adam beta2.") var beta2: Float?
    @Option(help: "Discriminator updates per generator update.") var nCritic: Int?
    @Option(help: "WGAN weight clipping bound.") var clip: Float = 0.01
    @Option(help: "WGAN-GP penalty weight.") var gpLambda: Float = 10
    @Option(help: "One-sided label smoothing: real targets (e.g. 0.9).") var labelSmoothing: Float?
    @Flag(help: "Noisy real labels, uniform in [0.7, 1.0].") var noisyLabels = false
    @Option(help: "Dataset: mnist (the 5,000 real digits set-up installs) or fashion-mnist.") var dataset: String = "mnist"
    @Option(help: "A standard MNIST-format folder to read instead of the dataset's default.") var data: String?
    @Option(help: "Folder for runs.") var runsDir: String = "runs"
    @Option(help: "Run name (default: model-loss-time).") var name: String?
    @Option(help: "Write a sample grid every K steps (0: only at the end).") var sampleEvery: Int = 100
    @Option(help: "Write a checkpoint every K steps (0: only at the end).") var checkpointEvery: Int = 500
    @Option(help: "Checkpoints to keep.") var keep: Int = 3
    @Option(help: "Continue from this checkpoint (its config is used; --steps may extend the run).") var resume: String?
    @Option(help: "OpenBLAS threads (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON metrics line per step instead of the progress display.") var json = false

    func run() throws {
        if let t = threads { BLASRuntime.setThreads(t) }
        var config: GANConfig
        if let r = resume {
            let ckpt: Checkpoint
            do { ckpt = try Checkpoint.read(path: r) } catch { fail("\(error)") }
            config = ckpt.config
            config.steps = max(steps, ckpt.step)
            try trainLoop(config: config, resume: (ckpt, r))
            return
        }
        config = GANConfig()
        let mo = modelOptions
        guard let m = ModelKind(rawValue: mo.model) else { fail("unknown --model '\(mo.model)'") }
        guard let l = LossKind(rawValue: mo.loss) else { fail("unknown --loss '\(mo.loss)'") }
        config.model = m
        config.loss = l
        config.imageSize = mo.imageSize ?? (m == .mlp ? 28 : 32)
        config.ngf = mo.ngf; config.ndf = mo.ndf; config.nc = mo.nc; config.latentDim = mo.latentDim
        config.wDim = mo.wDim; config.mappingLayers = mo.mappingLayers; config.styleMixingProb = mo.styleMixingProb
        config.progressive = mo.progressive
        config.steps = steps; config.batchSize = batch; config.seed = seed
        config.applyLossDefaults(lrGiven: lr != nil || lrG != nil || lrD != nil, betasGiven: beta1 != nil || beta2 != nil,
                                 nCriticGiven: nCritic != nil)
        if let v = lr { config.lrG = v; config.lrD = v }
        if let v = lrG { config.lrG = v }
        if let v = lrD { config.lrD = v }
        if let v = beta1 { config.beta1 = v }
        if let v = beta2 { config.beta2 = v }
        if let v = nCritic { config.nCritic = v }
        config.clip = clip; config.gpLambda = gpLambda
        config.labelSmoothing = labelSmoothing; config.noisyLabels = noisyLabels
        config.dataset = dataset; config.dataDir = data
        if let problem = config.validate() { fail(problem) }
        try trainLoop(config: config, resume: nil)
    }

    func trainLoop(config: GANConfig, resume: (Checkpoint, String)?) throws {
        let dataset: ImageDataset
        do { dataset = try loadTrainingData(config) } catch { fail("\(error)") }
        let models = GANModels(config: config)
        let trainer = GANTrainer(models: models, dataset: dataset)
        var runPath: String
        if let (ckpt, path) = resume {
            do { try TrainingSession.resume(trainer, from: ckpt, path: path) } catch { fail("\(error)") }
            // checkpoints/step_X.rgan -> the run folder
            runPath = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().path
        } else {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            runPath = runsDir + "/" + (name ?? "\(config.model.rawValue)-\(config.loss.rawValue)-\(stamp)")
        }
        let session = try TrainingSession(trainer: trainer, folder: RunFolder(path: runPath, keep: keep),
                                          sampleEvery: sampleEvery, checkpointEvery: checkpointEvery)
        print("run \(runPath): \(config.model.rawValue)\(config.progressive ? " (progressive)" : ""), \(config.loss.rawValue), "
              + "\(dataset.count) images from \(dataset.source), batch \(config.batchSize), steps \(trainer.step)..<\(config.steps), "
              + "G \(models.gParams.count) and D \(models.dParams.count) parameters, OpenBLAS \(BLASRuntime.coreName) x\(BLASRuntime.threads)")
        let progress = Progress(total: config.steps, label: "train", initial: trainer.step)
        try session.run { m in
            if json {
                print(String(format: "{\"step\":%d,\"d_loss\":%.5f,\"g_loss\":%.5f,\"d_x\":%.4f,\"d_g_z\":%.4f,\"gp\":%.5f}",
                             trainer.step, m.dLoss, m.gLoss, m.dReal, m.dFake, m.gradientPenalty))
            } else {
                var kv: [(String, String)] = [("d_loss", fmt(m.dLoss)), ("g_loss", fmt(m.gLoss)), ("D(x)", fmt(m.dReal)), ("D(G(z))", fmt(m.dFake))]
                if config.loss == .wganGP { kv.append(("gp", fmt(m.gradientPenalty))) }
                if config.progressive { kv.append(("res", "\(m.resolution)")); kv.append(("alpha", String(format: "%.2f", m.alpha))) }
                progress.update(trainer.step, kv)
            }
        }
        progress.finish()
        print("done: samples in \(session.folder.samples), checkpoints in \(session.folder.checkpoints.directory)")
    }
}

/// Loads a checkpoint (default: the newest of the newest run) into fresh models.
func loadModels(_ path: String?) -> (GANModels, Checkpoint, String) {
    guard let p = path ?? RunFolder.newestCheckpoint() else {
        fail("no checkpoint given and none found under ./runs (train first, or pass --checkpoint PATH)")
    }
    do {
        let ckpt = try Checkpoint.read(path: p)
        let models = GANModels(config: ckpt.config)
        try ckpt.restore(into: models, path: p)
        if let s = models.growthSchedule { models.setGrowth(s.state(at: max(ckpt.step - 1, 0))) }
        return (models, ckpt, p)
    } catch { fail("\(error)") }
}

func defaultOut(_ ckptPath: String, _ name: String) -> String {
    URL(fileURLWithPath: ckptPath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(name).path
}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an 8x8 grid of samples from a checkpoint.")
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "Output PNG (default: <run>/sample.png).") var out: String?
    @Option(help: "Number of samples.") var count: Int = 64
    @Option(help: "Seed for the latents.") var seed: UInt64 = 1

    func run() throws {
        let (models, ckpt, path) = loadModels(checkpoint)
        let z = latents(seed: seed, .fixedNoise, step: 1, indices: Array(0..<count), dim: ckpt.config.latentDim)
        let o = out ?? defaultOut(path, "sample.png")
        try saveImageGrid(models.sample(z), to: o, nrow: 8)
        print("wrote \(o) (\(count) samples from \(path), step \(ckpt.step))")
    }
}

/// Spherical interpolation as the tutorial's `slerp` (on the whole vector).
func slerp(_ a: [Float], _ b: [Float], _ t: Float) -> [Float] {
    let dotp = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
    let na = a.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
    let omega = acosf(min(max(dotp / (na * nb), -1), 1))
    if omega < 1e-6 { return zip(a, b).map { (1 - t) * $0 + t * $1 } }
    let s = sinf(omega)
    return zip(a, b).map { sinf((1 - t) * omega) / s * $0 + sinf(t * omega) / s * $1 }
}

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write rows of latent interpolations (lerp or slerp) as a PNG.")
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "lerp or slerp.") var mode: String = "slerp"
    @Option(help: "Rows (pairs of endpoints).") var rows: Int = 8
    @Option(help: "Images per row.") var steps: Int = 10
    @Option(help: "Seed for the endpoints.") var seed: UInt64 = 2
    @Option(help: "Output PNG (default: <run>/interpolate-<mode>.png).") var out: String?

    func run() throws {
        guard mode == "lerp" || mode == "slerp" else { fail("--mode must be lerp or slerp") }
        guard steps >= 2 && rows >= 1 else { fail("--steps must be at least 2 and --rows at least 1") }
        let (models, ckpt, path) = loadModels(checkpoint)
        let d = ckpt.config.latentDim
        let ends = latents(seed: seed, .interpolate, step: 0, indices: Array(0..<(2 * rows)), dim: d).toArray()
        var zs: [Float] = []
        for r in 0..<rows {
            let a = Array(ends[(2 * r * d)..<((2 * r + 1) * d)]), b = Array(ends[((2 * r + 1) * d)..<((2 * r + 2) * d)])
            for s in 0..<steps {
                let t = Float(s) / Float(steps - 1)
                zs += mode == "lerp" ? zip(a, b).map { (1 - t) * $0 + t * $1 } : slerp(a, b, t)
            }
        }
        let o = out ?? defaultOut(path, "interpolate-\(mode).png")
        try saveImageGrid(models.sample(Tensor(shape: [rows * steps, d], values: zs)), to: o, nrow: steps)
        print("wrote \(o) (\(rows) rows of \(steps), \(mode))")
    }
}

struct StyleMix: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "style-mix",
        abstract: "Write StyleGAN's style-mixing grid: row sources give the coarse styles, column sources the fine ones.")
    @Option(help: "Checkpoint of a stylegan run (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "Sources per side.") var count: Int = 6
    @Option(help: "Crossover layer: layers before it take the row source's w (default: half the layers).") var crossover: Int?
    @Option(help: "Seed.") var seed: UInt64 = 3
    @Option(help: "Output PNG (default: <run>/style-mix.png).") var out: String?

    func run() throws {
        let (models, ckpt, path) = loadModels(checkpoint)
        guard let g = models.generator as? StyleGenerator else { fail("\(path) is a \(ckpt.config.model.rawValue) model; style mixing needs stylegan") }
        let k = crossover ?? g.numLayers / 2
        guard k >= 0 && k <= g.numLayers else { fail("--crossover must be in 0...\(g.numLayers)") }
        let d = ckpt.config.latentDim
        let za = latents(seed: seed, .styleMix, step: 0, indices: Array(0..<count), dim: d)
        let zb = latents(seed: seed, .styleMix, step: 1, indices: Array(0..<count), dim: d)
        g.eval()
        let (a, b, mixed): (Tensor, Tensor, Tensor) = withNoGrad {
            // Every pair (row i, column j): coarse from A_i, fine from B_j.
            let rowsA = concat((0..<count).map { i in za.narrow(0, i, 1).expand([count, d]) }, dim: 0)
            let colsB = concat(Array(repeating: zb, count: count), dim: 0)
            return (g.generate(za), g.generate(zb), g.mix(rowsA, colsB, crossover: k))
        }
        // Layout (count + 1)^2: top row B sources, left column A sources, blank corner.
        let (c, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        var cells: [Tensor] = [Tensor.full([1, c, h, w], -1), b]
        for i in 0..<count { cells.append(a.narrow(0, i, 1)); cells.append(mixed.narrow(0, i * count, count)) }
        let o = out ?? defaultOut(path, "style-mix.png")
        try saveImageGrid(concat(cells, dim: 0), to: o, nrow: count + 1)
        print("wrote \(o) (\(count)x\(count) mixes at crossover \(k) of \(g.numLayers) layers)")
    }
}

func classifierPath(_ dataset: String) -> String { "data/classifier-\(dataset).safetensors" }

struct TrainClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-classifier",
        abstract: "Train the digit classifier whose features FID uses, and report its held-out accuracy.")
    @Option(help: "Dataset (its train split trains, its test split measures).") var dataset: String = "mnist"
    @Option(help: "A standard MNIST-format folder instead of the dataset's default.") var data: String?
    @Option(help: "Epochs.") var epochs: Int = 4
    @Option(help: "Use only the first N training images (quick checks).") var maxTrain: Int?
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Output (default: data/classifier-<dataset>.safetensors).") var out: String?

    func run() throws {
        guard let name = DatasetName(rawValue: dataset) else { fail("unknown --dataset '\(dataset)'") }
        let train: ImageDataset, test: ImageDataset
        do {
            let full = try name.load(split: .train, folder: data)
            let n = min(maxTrain ?? full.count, full.count)
            train = ImageDataset(pixels: Array(full.pixels[0..<(n * full.height * full.width)]), count: n, height: full.height,
                                 width: full.width, labels: Array(full.labels[0..<n]), source: full.source)
            test = try name.load(split: .test, folder: data)
        } catch { fail("\(error)") }
        var rng = RandomGenerator(seed: seed, stream: 0xC1)
        let clf = DigitClassifier(rng: &rng)
        let progress = Progress(total: epochs * (train.count / 64), label: "classifier")
        let acc = clf.fit(train: train, test: test, epochs: epochs, seed: seed) { s, _, loss in
            progress.update(s, [("loss", fmt(loss))])
        }
        progress.finish()
        let o = out ?? classifierPath(dataset)
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: o).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        try Safetensors.write(clf.stateDict().map { (name: $0.0, tensor: $0.1) },
                              metadata: ["accuracy": String(acc), "dataset": dataset, "train": String(train.count),
                                         "test": String(test.count)], to: o)
        print(String(format: "held-out accuracy %.2f%% on %d %@ test images; wrote %@", acc * 100, test.count, dataset, o))
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "FID, classifier score and mode coverage of a checkpoint's generator against real images.")
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "Classifier (default: data/classifier-<dataset>.safetensors from gan train-classifier).") var classifier: String?
    @Option(help: "Generated samples (real: the same number from the train split, at most all of it).") var samples: Int = 2000
    @Option(help: "Seed for the latents.") var seed: UInt64 = 4
    @Flag(help: "Also score an untrained generator of the same config (the baseline).") var baseline = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let (models, ckpt, path) = loadModels(checkpoint)
        let cp = classifier ?? classifierPath(ckpt.config.dataset)
        var rng = RandomGenerator(seed: 0)
        let clf = DigitClassifier(rng: &rng)
        do {
            let st = try Safetensors.read(path: cp)
            try clf.loadStateDict(st.tensors)
        } catch { fail("\(error) (train one with: gan train-classifier --dataset \(ckpt.config.dataset))") }
        let real: ImageDataset
        do { real = try loadTrainingData(ckpt.config) } catch { fail("\(error)") }
        let n = min(samples, real.count)
        let realImages = batch(real, indices: Array(0..<n), size: 28)
        let realStats = FeatureStatistics(features: clf.featureRows(realImages))
        func score(_ m: GANModels) -> (Double, ClassDistributionScores) {
            var parts: [Tensor] = []
            for s in stride(from: 0, to: samples, by: 250) {
                let z = latents(seed: seed, .fixedNoise, step: 2, indices: Array(s..<min(s + 250, samples)), dim: ckpt.config.latentDim)
                parts.append(m.sample(z))
            }
            let fake = concat(parts, dim: 0)
            return (frechetDistance(FeatureStatistics(features: clf.featureRows(fake)), realStats),
                    classDistributionScores(probabilities: clf.probabilities(fake)))
        }
        let (fid, cls) = score(models)
        var base: (Double, ClassDistributionScores)?
        if baseline { base = score(GANModels(config: ckpt.config)) }
        if json {
            var o: [String: Any] = ["checkpoint": path, "step": ckpt.step, "fid": fid, "classifier_score": cls.classifierScore,
                                    "mode_entropy": cls.modeEntropy, "histogram": cls.histogram, "samples": samples]
            if let b = base { o["baseline_fid"] = b.0; o["baseline_classifier_score"] = b.1.classifierScore }
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("checkpoint \(path) (step \(ckpt.step)), \(samples) samples vs \(n) real, classifier \(cp)")
        print(String(format: "FID %.2f   classifier score %.3f (of 10)   mode entropy %.3f (of %.3f)", fid, cls.classifierScore,
                     cls.modeEntropy, Foundation.log(10.0)))
        print("predicted classes: \(cls.histogram)")
        if let b = base {
            print(String(format: "untrained generator: FID %.2f   classifier score %.3f   mode entropy %.3f", b.0, b.1.classifierScore, b.1.modeEntropy))
        }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print which OpenBLAS kernels run, the thread count and the CPU features seen.")

    func run() {
        let flags = BLASRuntime.cpuFlags
        print("openblas core:     \(BLASRuntime.coreName)")
        print("selection:         \(BLASRuntime.selectionNote)")
        print("best for this CPU: \(BLASRuntime.bestCoreType(flags: flags) ?? "generic")")
        print("openblas threads:  \(BLASRuntime.threads)")
        print("openblas config:   \(BLASRuntime.config)")
        let simd = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"].filter(flags.contains)
        print("cpu features:      \(simd.joined(separator: " "))")
    }
}

BLASRuntime.selectKernels()
Gan.main()
