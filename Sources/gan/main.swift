import ArgumentParser
import Datasets
import Foundation
import GAN
import NN
import Telemetry
import TrainingCLI
import Tensors

struct Gan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "RingGAN: GAN training in Swift, from the tensor up.",
        subcommands: [Train.self, Sample.self, Interpolate.self, StyleMix.self, Evaluate.self, TrainClassifier.self,
                      Export.self, Import.self, Info.self])
}

/// Writes to standard error as it comes (progress displays of --json commands).
func writeToStandardError(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}

/// A progress display: on standard output, or on standard error when standard output carries
/// JSON for machines.
func makeProgress(total: Int, label: String, json: Bool = false, initial: Int = 0) -> Telemetry.Progress {
    json ? Progress(total: total, label: label, initial: initial, output: writeToStandardError, isTerminal: isatty(2) != 0)
        : Progress(total: total, label: label, initial: initial)
}

/// Prints to standard error and exits non-zero.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write("gan: error: \(message)\n".data(using: .utf8)!)
    exit(1)
}


struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GAN in one process on real MNIST digits (or --dataset / --data).",
        discussion: """
        Writes runs/<name>/: config.json, samples/step_*.png (8x8 grids from fixed noise), \
        checkpoints/step_*.rgan (the newest --keep kept) and metrics.jsonl. Loss defaults follow the \
        tutorial (Adam(0.5, 0.999), lr 2e-4 unless the loss says otherwise):

        """ + GANLoss.summary)

    @OptionGroup var training: TrainingFlags
    @OptionGroup var output: RunFlags
    @Option(help: "Threads (cores) the engine uses (default: $RINGGAN_THREADS, else all cores).") var threads: Int?
    @Option(help: "Folder for the TensorBoard event file (default: the run folder; view with tensorboard --logdir runs).")
    var logdir: String?
    @Flag(help: "Print one JSON metrics line per step instead of the progress display.") var json = false
    @Option(help: "Stop after this much time, counted from the command's start (300, 45s, 5m, 1h30m), writing the final checkpoint and grid then, even before --steps.")
    var timeLimit: String?
    @OptionGroup var logging: LogOptions

    func run() throws {
        let started = Date()
        let log = logging.bootstrap("gan.train")
        var deadline: Date?
        if let t = timeLimit {
            guard let seconds = parseDuration(t) else { fail("--time-limit '\(t)': give seconds (300) or a duration such as 45s, 5m, 1h30m") }
            deadline = started.addingTimeInterval(seconds)
        }
        ThreadPool.setThreads(threads ?? ThreadPool.defaultThreads)
        var config: GANConfig
        if let r = output.resume {
            let ckpt: Checkpoint
            do { ckpt = try Checkpoint.read(path: r) } catch { fail("\(error)") }
            config = ckpt.config
            config.steps = max(training.steps, ckpt.step)
            try trainLoop(config: config, resume: (ckpt, r), deadline: deadline, log: log)
            return
        }
        do { config = try training.config() } catch { fail("\(error)") }
        try trainLoop(config: config, resume: nil, deadline: deadline, log: log)
    }

    func trainLoop(config: GANConfig, resume: (Checkpoint, String)?, deadline: Date?, log: Logger) throws {
        let dataset: ImageDataset
        do { dataset = try loadTrainingData(config) } catch { fail("\(error)") }
        let models = GANModels(config: config)
        let trainer = GANTrainer(models: models, dataset: dataset)
        var runPath: String
        if let (ckpt, path) = resume {
            do { try TrainingSession.resume(trainer, from: ckpt, path: path) } catch { fail("\(error)") }
            // checkpoints/step_X.rgan -> the run folder
            runPath = runFolder(ofCheckpoint: path)
        } else {
            runPath = output.newRunPath(config)
        }
        let session: TrainingSession
        do {
            session = try TrainingSession(trainer: trainer, folder: RunFolder(path: runPath, keep: output.keep),
                                          sampleEvery: output.sampleEvery, checkpointEvery: output.checkpointEvery, logdir: logdir, logger: log)
        } catch { fail("\(error)") }
        session.deadline = deadline
        guard output.logEvery >= 1 else { fail("--log-every must be at least 1, got \(output.logEvery)") }
        session.logEvery = output.logEvery
        let summary = "run \(runPath): \(config.model.rawValue)\(config.progressive ? " (progressive)" : ""), \(config.loss.rawValue), "
            + "\(dataset.count) images from \(dataset.source), batch \(config.batchSize), steps \(trainer.step)..<\(config.steps), "
            + "G \(models.gParams.count) and D \(models.dParams.count) parameters, \(ThreadPool.shared.threads) thread(s), OpenBLAS \(BLASRuntime.coreName) kernels"
        log.info("\(summary)")
        if let e = session.events { log.info("TensorBoard events: \(e.path)") }
        let progress = Progress(total: config.steps, label: "train", initial: trainer.step)
        defer { if !json { progress.finish() } }
        try session.run { m in
            if json {
                print(m.jsonLine())
                fflush(nil)   // one line per step as it happens, also into a pipe
            } else {
                progress.update(m.step, m.progressFields(config))
            }
        }
        if !json { progress.finish() }
        session.events?.close()
        if session.stoppedByDeadline { log.info("time limit reached: stopped at step \(trainer.step) of \(config.steps)") }
        log.info("done: samples in \(session.folder.samples), checkpoints in \(session.folder.checkpoints.directory)",
                 metadata: ["gemm_gflop": .string(String(format: "%.3f", EngineCounters.gemmGFLOP))])
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

/// StyleGAN's truncation trick for sampling commands: psi < 1 pulls every w towards the mean w
/// (typical images, less variety); other models refuse it.
func applyTruncation(_ psi: Float?, to models: GANModels, _ path: String) {
    guard let psi else { return }
    guard let g = models.samplingGenerator as? StyleGenerator else {
        fail("--truncation applies to stylegan; \(path) is a \(models.config.model.rawValue) model")
    }
    guard psi.isFinite && psi >= 0 else { fail("--truncation must be a number >= 0 (1: none)") }
    g.truncation = psi
}

/// `name` in the run folder of a checkpoint (`<run>/checkpoints/step_X.rgan` -> `<run>/name`;
/// a checkpoint elsewhere: beside it).
func defaultOut(_ ckptPath: String, _ name: String) -> String {
    URL(fileURLWithPath: runFolder(ofCheckpoint: ckptPath)).appendingPathComponent(name).path
}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write samples from a checkpoint: an 8x8 PNG grid and/or the images as a .npy array.",
        discussion: """
        Each --out is chosen by its extension: NAME.npy gets the images as float32 [N, C, H, W] in [-1, 1] \
        (C order, numpy.load reads it); any other name gets a PNG grid. Give --out twice for both. \
        --latents z.npy uses those latents ([N, latent_dim], float32 or float64) instead of drawing --count \
        of them from --seed; --latents-out writes the latents used. The generator runs in eval mode \
        (BatchNorm running statistics), as PyTorch's model.eval().
        """)
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "Output, by extension: .npy for the images as an array, otherwise a PNG grid; repeatable (default: <run>/sample.png).")
    var out: [String] = []
    @Option(help: "Number of samples (ignored with --latents).") var count: Int = 64
    @Option(help: "Seed for the latents.") var seed: UInt64 = 1
    @Option(help: "Latents from a .npy file, shape [N, latent_dim].") var latents: String?
    @Option(help: "Write the latents used to this .npy file ([N, latent_dim] float32).") var latentsOut: String?
    @Option(help: "Images per row of the PNG grid.") var nrow: Int = 8
    @Option(help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    func run() throws {
        let log = logging.bootstrap("gan")
        let (models, ckpt, path) = loadModels(checkpoint)
        applyTruncation(truncation, to: models, path)
        let d = ckpt.config.latentDim
        let z: Tensor
        if let lp = latents {
            do { z = try Npy.read(path: lp) } catch { fail("\(error)") }
            guard z.rank == 2, z.shape[1] == d, z.shape[0] > 0 else {
                fail("\(lp): latents of shape \(z.shape); this \(ckpt.config.model.rawValue) generator needs [N, \(d)]")
            }
        } else {
            guard count > 0 else { fail("--count must be at least 1") }
            z = GAN.latents(seed: seed, .fixedNoise, step: 1, indices: Array(0..<count), dim: d)
        }
        guard nrow > 0 else { fail("--nrow must be at least 1") }
        let n = z.shape[0]
        var parts: [Tensor] = []
        for s in stride(from: 0, to: n, by: 256) { parts.append(models.sample(z.narrow(0, s, min(256, n - s)))) }
        let images = parts.count == 1 ? parts[0] : concat(parts, dim: 0)
        if let lo = latentsOut {
            do { try Npy.write(z, to: lo) } catch { fail("\(error)") }
            log.info("wrote latents \(lo) \(z.shape)")
        }
        let outs = out.isEmpty ? [defaultOut(path, "sample.png")] : out
        for o in outs {
            do {
                if o.lowercased().hasSuffix(".npy") {
                    try Npy.write(images, to: o)
                } else {
                    try saveImageGrid(images, to: o, nrow: nrow)
                }
            } catch { fail("\(error)") }
            print("wrote \(o) (\(n) samples \(images.shape.dropFirst().map(String.init).joined(separator: "x")) from \(path), step \(ckpt.step))")
        }
    }
}

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write rows of latent interpolations (lerp or slerp) as a PNG.")
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "lerp or slerp.") var mode: String = "slerp"
    @Option(help: "Rows (pairs of endpoints).") var rows: Int = 8
    @Option(help: "Images per row.") var steps: Int = 10
    @Option(help: "Seed for the endpoints.") var seed: UInt64 = 2
    @Option(help: "Output PNG (default: <run>/interpolate-<mode>.png).") var out: String?
    @Option(help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    func run() throws {
        _ = logging.bootstrap("gan")
        guard mode == "lerp" || mode == "slerp" else { fail("--mode must be lerp or slerp") }
        guard steps >= 2 && rows >= 1 else { fail("--steps must be at least 2 and --rows at least 1") }
        let (models, ckpt, path) = loadModels(checkpoint)
        applyTruncation(truncation, to: models, path)
        let d = ckpt.config.latentDim
        let ends = latents(seed: seed, .interpolate, step: 0, indices: Array(0..<(2 * rows)), dim: d).toArray()
        var zs: [Float] = []
        for r in 0..<rows {
            let a = Array(ends[(2 * r * d)..<((2 * r + 1) * d)]), b = Array(ends[((2 * r + 1) * d)..<((2 * r + 2) * d)])
            for s in 0..<steps {
                let t = Float(s) / Float(steps - 1)
                zs += mode == "lerp" ? GAN.lerp(a, b, t) : GAN.slerp(a, b, t)
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
    @Option(help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    func run() throws {
        _ = logging.bootstrap("gan")
        let (models, ckpt, path) = loadModels(checkpoint)
        guard let g = models.samplingGenerator as? StyleGenerator else { fail("\(path) is a \(ckpt.config.model.rawValue) model; style mixing needs stylegan") }
        applyTruncation(truncation, to: models, path)
        let k = crossover ?? g.numLayers / 2
        guard k >= 0 && k <= g.numLayers else { fail("--crossover must be in 0...\(g.numLayers)") }
        let d = ckpt.config.latentDim
        let za = latents(seed: seed, .styleMix, step: 0, indices: Array(0..<count), dim: d)
        let zb = latents(seed: seed, .styleMix, step: 1, indices: Array(0..<count), dim: d)
        g.eval()
        let (a, b, mixed): (Tensor, Tensor, Tensor) = withNoGrad {
            // Every pair (row i, column j): coarse from A_i, fine from B_j.
            (g.generate(za), g.generate(zb), g.mixingGrid(rows: za, columns: zb, crossover: k))
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

func classifierPath(_ dataset: String) -> String { DataRoot.path + "/classifier-\(dataset).safetensors" }

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
    @Flag(help: "Print one JSON line per step and a JSON result line instead of the progress display.") var json = false
    @OptionGroup var logging: LogOptions

    func run() throws {
        let log = logging.bootstrap("gan.classifier")
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
        guard train.count >= 64 else { fail("the classifier trains on batches of 64; \(train.count) training images are too few") }
        log.info("training the classifier on \(train.count) \(dataset) images for \(epochs) epochs")
        let progress = Progress(total: epochs * (train.count / 64), label: "classifier")
        let acc = clf.fit(train: train, test: test, epochs: epochs, seed: seed) { s, total, loss in
            if json {
                print(String(format: "{\"step\":%d,\"steps\":%d,\"loss\":%.5f}", s, total, loss))
            } else {
                progress.update(s, [("loss", String(format: "%.4f", loss))])
            }
        }
        if !json { progress.finish() }
        let o = out ?? classifierPath(dataset)
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: o).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        try Safetensors.write(clf.stateDict().map { (name: $0.0, tensor: $0.1) },
                              metadata: ["accuracy": String(acc), "dataset": dataset, "train": String(train.count),
                                         "test": String(test.count)], to: o)
        if json {
            let obj: [String: Any] = ["accuracy": acc, "dataset": dataset, "train": train.count, "test": test.count, "out": o]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "held-out accuracy %.2f%% on %d %@ test images; wrote %@", acc * 100, test.count, dataset, o))
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "FID, classifier score and mode coverage of a checkpoint's generator against real images.",
        discussion: """
        The real reference is a seeded draw from the train split, stratified by class (every digit in its \
        proportion of the split: 200 of each for 2,000 of the 4,500 real digits), fixed by --reference-seed. \
        Beside the FID it prints the real-vs-real floor: the FID of a second, disjoint real draw of the same \
        size against the reference, what real data itself scores at this sample size.
        """)
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "Classifier (default: data/classifier-<dataset>.safetensors from gan train-classifier).") var classifier: String?
    @Option(help: "Generated samples; the real reference is as many train images (at most the whole split), drawn per class.")
    var samples: Int = 2000
    @Option(help: "Seed for the latents.") var seed: UInt64 = 4
    @Option(help: "Seed of the stratified draw of real reference images.") var referenceSeed: UInt64 = RealReference.defaultSeed
    @Flag(help: "Also score an untrained generator of the same config (the baseline).") var baseline = false
    @Option(help: "Folder for the TensorBoard event file with eval/fid, eval/classifier_score, eval/mode_entropy at the checkpoint's step (default: the checkpoint's run folder).")
    var logdir: String?
    @Flag(help: "Print one JSON object (the progress display goes to standard error).") var json = false
    @OptionGroup var logging: LogOptions

    func run() throws {
        let log = logging.bootstrap("gan.evaluate")
        guard samples >= 2 else { fail("--samples must be at least 2 (FID needs a covariance)") }
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
        guard real.count >= 2 else { fail("\(real.source): \(real.count) images; FID needs at least 2") }
        let n = min(samples, real.count)
        var progress = makeProgress(total: n + min(n, real.count - n), label: "real features", json: json)
        let evaluator = FIDEvaluator(classifier: clf, dataset: real, count: samples, seed: referenceSeed) { done, _ in progress.update(done) }
        progress.finish()
        let ref = evaluator.reference
        func score(_ m: GANModels, _ label: String) -> (Double, ClassDistributionScores) {
            progress = makeProgress(total: samples, label: label, json: json)
            let r = evaluator.score(m, count: samples, seed: seed) { done, _ in progress.update(done) }
            progress.finish()
            return (r.fid, r.classes)
        }
        let (fid, cls) = score(models, "generate+score")
        var base: (Double, ClassDistributionScores)?
        if baseline { base = score(GANModels(config: ckpt.config), "baseline") }
        // The scores as TensorBoard scalars at the checkpoint's step, beside the run's curves.
        let dir = logdir ?? runFolder(ofCheckpoint: path)
        do {
            let events = try EventWriter(directory: dir)
            var values: [(String, Float)] = [("eval/fid", Float(fid)), ("eval/classifier_score", Float(cls.classifierScore)),
                                             ("eval/mode_entropy", Float(cls.modeEntropy)), ("eval/real_floor_fid", Float(evaluator.floor))]
            if let b = base { values += [("eval/baseline_fid", Float(b.0)), ("eval/baseline_classifier_score", Float(b.1.classifierScore))] }
            events.scalars(values, step: ckpt.step)
            events.close()
            log.info("TensorBoard events: \(events.path)")
        } catch {
            log.warning("no TensorBoard events written: \(error)")
        }
        let floorNote = ref.floorIndices.count >= 2
            ? "\(evaluator.floorSize) other train images drawn the same way vs the reference"
            : "the reference's two halves (\(evaluator.floorSize) each): no train images left over"
        if json {
            var o: [String: Any] = ["checkpoint": path, "step": ckpt.step, "fid": fid, "classifier_score": cls.classifierScore,
                                    "mode_entropy": cls.modeEntropy, "histogram": cls.histogram, "samples": samples,
                                    "real_floor_fid": evaluator.floor, "real_floor_size": evaluator.floorSize,
                                    "reference": ["split": "train", "count": ref.indices.count, "per_class": ref.perClass,
                                                  "seed": ref.seed, "split_count": ref.splitCount,
                                                  "description": ref.describe()] as [String: Any]]
            if let b = base { o["baseline_fid"] = b.0; o["baseline_classifier_score"] = b.1.classifierScore }
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("checkpoint \(path) (step \(ckpt.step)), \(samples) samples, classifier \(cp)")
        print("reference: \(ref.describe())")
        print(String(format: "FID %.2f   (real-vs-real floor %.2f: %@)", fid, evaluator.floor, floorNote))
        print(String(format: "classifier score %.3f (of 10)   mode entropy %.3f (of %.3f)", cls.classifierScore,
                     cls.modeEntropy, Foundation.log(10.0)))
        print("predicted classes: \(cls.histogram)")
        if let b = base {
            print(String(format: "untrained generator: FID %.2f   classifier score %.3f   mode entropy %.3f", b.0, b.1.classifierScore, b.1.modeEntropy))
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's generator (and discriminator) as safetensors with PyTorch state_dict keys.",
        discussion: """
        The file holds the generator's state_dict: parameters and buffers (BatchNorm running_mean, \
        running_var, and num_batches_tracked as int64), with the keys and shapes of the tutorial's PyTorch \
        class for the same structure (mlp: Generator, dcgan at 64x64: DCGANGenerator, dcgan at 32x32: its \
        32x32 variant), so in PyTorch:

          G.load_state_dict(safetensors.torch.load_file("generator.safetensors"), strict=True)

        --include-discriminator writes the discriminator's state_dict to a second file (same key rules), \
        which loads into the tutorial's Discriminator / DCGANDiscriminator / SNDiscriminator. The metadata \
        names the PyTorch class (pytorch.class), the step and the RingGAN config (ringgan.config), which \
        gan import reads back.
        """)
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "Format (safetensors).") var format: String = "safetensors"
    @Option(help: "Output file (default: <run>/generator.safetensors).") var out: String?
    @Flag(help: "Also write the discriminator.") var includeDiscriminator = false
    @Option(help: "The discriminator's file (default: beside --out, 'generator' in its name replaced by 'discriminator', else with -discriminator added).")
    var discriminatorOut: String?
    @OptionGroup var logging: LogOptions

    /// `runs/x/generator.safetensors` -> `runs/x/discriminator.safetensors`; `g.safetensors` ->
    /// `g-discriminator.safetensors`.
    static func discriminatorPath(for out: String) -> String {
        let url = URL(fileURLWithPath: out)
        let name = url.lastPathComponent
        let dir = (out as NSString).deletingLastPathComponent
        let newName: String
        if let r = name.range(of: "generator", options: .backwards) {
            newName = name.replacingCharacters(in: r, with: "discriminator")
        } else {
            let ext = url.pathExtension
            newName = ext.isEmpty ? name + "-discriminator" : String(name.dropLast(ext.count + 1)) + "-discriminator." + ext
        }
        return dir.isEmpty ? newName : dir + "/" + newName
    }

    func run() throws {
        let log = logging.bootstrap("gan.export")
        guard format == "safetensors" else { fail("unknown --format '\(format)' (safetensors is supported)") }
        let (models, ckpt, path) = loadModels(checkpoint)
        let o = out ?? defaultOut(path, "generator.safetensors")
        let c = ckpt.config
        do {
            try TorchInterop.write(models.samplingGenerator, config: c, step: ckpt.step, to: o)
        } catch { fail("\(error)") }
        let cls = TorchInterop.pytorchClass(c, discriminator: false)
        print("wrote \(o): generator\(models.emaGenerator != nil ? " (the EMA of its weights)" : ""), \(models.generator.stateDict().count) tensors, step \(ckpt.step)"
              + (cls.map { ", loads into \($0)" } ?? ""))
        if includeDiscriminator {
            let dp = discriminatorOut ?? Export.discriminatorPath(for: o)
            guard dp != o else { fail("--discriminator-out must differ from --out") }
            do {
                try TorchInterop.write(models.discriminator, config: c, step: ckpt.step, discriminator: true, to: dp)
            } catch { fail("\(error)") }
            let dcls = TorchInterop.pytorchClass(c, discriminator: true)
            print("wrote \(dp): discriminator, \(models.discriminator.stateDict().count) tensors"
                  + (dcls.map { ", loads into \($0)" } ?? ""))
        }
        log.debug("exported", metadata: ["checkpoint": .string(path)])
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a generator (and discriminator) state_dict from safetensors into a RingGAN checkpoint.",
        discussion: """
        Reads a file as PyTorch writes it (safetensors.torch.save_file(G.state_dict(), "g.safetensors"): \
        any key order, float32 tensors, int64 num_batches_tracked) or as gan export writes it, loads it \
        strictly (every key, every shape) into the generator and writes a step-0 checkpoint \
        (step = total steps for progressive models) with fresh optimizer state: gan sample / interpolate / \
        evaluate read it, and gan train --resume fine-tunes it. The discriminator comes from --discriminator, \
        or is freshly initialised from --seed.

        The model is taken, in order of precedence, from the flags given here, the ringgan.config metadata \
        of a gan export file, and the keys and shapes (the tutorial's Generator: mlp; DCGANGenerator and its \
        32x32 variant: dcgan with image size, ngf, nc and latent size read from the weights). \
        By default the checkpoint goes to runs/import-<file name>/checkpoints/step_00000000.rgan.
        """)
    @Option(help: "The generator's safetensors file.") var safetensors: String
    @Option(help: "The discriminator's safetensors file (optional).") var discriminator: String?
    @Option(help: "The checkpoint to write (default: runs/import-<name>/checkpoints/step_<step>.rgan).") var checkpointOut: String?
    @Option(help: "Model: \(ModelKind.allCases.map { $0.rawValue }.joined(separator: ", ")).") var model: String?
    @Option(help: "Loss of later fine-tuning: \(LossKind.allCases.map { $0.rawValue }.joined(separator: ", ")).") var loss: String?
    @Option(help: "Image size.") var imageSize: Int?
    @Option(help: "Generator feature maps (ngf).") var ngf: Int?
    @Option(help: "Discriminator feature maps (ndf).") var ndf: Int?
    @Option(help: "Image channels.") var nc: Int?
    @Option(help: "Latent size.") var latentDim: Int?
    @Option(help: "StyleGAN: w size.") var wDim: Int?
    @Option(help: "StyleGAN: mapping network layers.") var mappingLayers: Int?
    @Flag(help: "Progressive model.") var progressive = false
    @Option(help: "Dataset of later fine-tuning (mnist, fashion-mnist).") var dataset: String?
    @Option(help: "A standard MNIST-format folder for later fine-tuning.") var data: String?
    @Option(help: "Seed (fresh discriminator, data order of later fine-tuning).") var seed: UInt64?
    @OptionGroup var logging: LogOptions

    func run() throws {
        let log = logging.bootstrap("gan.import")
        let g: (tensors: [String: Tensor], dtypes: [String: Safetensors.DType], metadata: [String: String])
        do { g = try Safetensors.readFile(path: safetensors) } catch { fail("\(error)") }
        let fromFile = TorchInterop.inferGeneratorConfig(tensors: g.tensors, metadata: g.metadata)
        let anyFlag = model != nil || imageSize != nil || ngf != nil || nc != nil || latentDim != nil || wDim != nil
            || mappingLayers != nil || progressive
        var c = fromFile ?? GANConfig()
        if fromFile == nil && model == nil {
            fail("\(safetensors): cannot tell the model from its keys (\(g.tensors.keys.sorted().prefix(4).joined(separator: ", "))...); "
                 + "give --model and its sizes (--image-size, --ngf, --nc, --latent-dim)")
        }
        if let m = model {
            guard let k = ModelKind(rawValue: m) else { fail("unknown --model '\(m)'") }
            if k != c.model { c.imageSize = k == .mlp ? 28 : 32 }
            c.model = k
        }
        if let l = loss {
            guard let k = LossKind(rawValue: l) else { fail("unknown --loss '\(l)'") }
            c.loss = k
            c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: false)
        }
        if let v = imageSize { c.imageSize = v }
        if let v = ngf { c.ngf = v }
        if let v = ndf { c.ndf = v }
        if let v = nc { c.nc = v }
        if let v = latentDim { c.latentDim = v }
        if let v = wDim { c.wDim = v }
        if let v = mappingLayers { c.mappingLayers = v }
        if progressive { c.progressive = true }
        if let v = dataset { c.dataset = v }
        if let v = data { c.dataDir = v }
        if let v = seed { c.seed = v }
        if let problem = c.validate() { fail(problem) }
        var d: [String: Tensor]?
        if let dp = discriminator {
            do { d = try Safetensors.read(path: dp).tensors } catch { fail("\(error)") }
        }
        let models: GANModels
        do {
            models = try TorchInterop.load(config: c, generator: g.tensors, discriminator: d, generatorPath: safetensors,
                                           discriminatorPath: discriminator)
        } catch {
            fail("\(error)" + (anyFlag ? "" : " (give --model and its sizes if the guess is wrong)"))
        }
        // The data position of later fine-tuning: the dataset's size when it is at hand.
        var count = c.batchSize
        do { count = try loadTrainingData(c).count } catch {
            log.warning("data set not found (\(error)): the checkpoint samples and evaluates, but to fine-tune it with gan train --resume, import where the data set is (--dataset / --data)")
        }
        let step = c.progressive ? c.steps : 0
        let ckpt = TorchInterop.checkpoint(models, step: step, sampler: EpochSampler(count: max(count, c.batchSize), batchSize: c.batchSize, seed: c.seed))
        let name = URL(fileURLWithPath: safetensors).deletingPathExtension().lastPathComponent
        let o = checkpointOut ?? "runs/import-\(name)/checkpoints/" + String(format: "step_%08d.rgan", step)
        do {
            try FileManager.default.createDirectory(atPath: (o as NSString).deletingLastPathComponent.isEmpty ? "." : (o as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try ckpt.write(to: o)
        } catch { fail("\(error)") }
        let source = fromFile == nil ? "the flags" : (g.metadata[TorchInterop.configKey] != nil ? "the file's metadata" : "the weights' keys and shapes")
        log.info("model from \(source)\(anyFlag && fromFile != nil ? " and the flags" : "")")
        print("wrote \(o): \(TorchInterop.describe(c)) generator from \(safetensors)"
              + (discriminator.map { ", discriminator from \($0)" } ?? ", fresh discriminator"))
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print which OpenBLAS kernels run, the thread count and the CPU features seen.")
    @OptionGroup var logging: LogOptions

    func run() {
        _ = logging.bootstrap("gan")
        let flags = BLASRuntime.cpuFlags
        print("openblas core:     \(BLASRuntime.coreName)")
        print("selection:         \(BLASRuntime.selectionNote)")
        print("best for this CPU: \(BLASRuntime.bestCoreType(flags: flags) ?? "generic")")
        print("engine threads:    \(ThreadPool.shared.threads) (RINGGAN_THREADS or --threads; OpenBLAS runs 1 per call, the engine splits GEMMs)")
        print("openblas config:   \(BLASRuntime.config)")
        let simd = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"].filter(flags.contains)
        print("cpu features:      \(simd.joined(separator: " "))")
    }
}

BLASRuntime.selectKernels()
Gan.main()
