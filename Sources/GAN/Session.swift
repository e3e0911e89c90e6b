import Data
import Foundation
import NN
import Telemetry
import Tensors

/// Loads the training split a config names: `dataDir` if given, else the dataset's default
/// folder (`data/mnist-5k` for mnist, Debian's folder for fashion-mnist).
public func loadTrainingData(_ config: GANConfig, split: Split = .train) throws -> ImageDataset {
    guard let name = DatasetName(rawValue: config.dataset) else {
        throw SessionError("unknown dataset '\(config.dataset)' (known: \(DatasetName.allCases.map { $0.rawValue }.joined(separator: ", ")))")
    }
    return try name.load(split: split, folder: config.dataDir)
}

public struct SessionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A run folder: `config.json`, `samples/step_XXXXXXXX.png` grids from fixed noise,
/// `checkpoints/step_XXXXXXXX.rgan` (the newest K kept) and `metrics.jsonl`.
public struct RunFolder {
    public let path: String
    public var samples: String { path + "/samples" }
    public var checkpoints: CheckpointStore { CheckpointStore(directory: path + "/checkpoints", keep: keep) }
    public let keep: Int

    public init(path: String, keep: Int = 3) {
        self.path = path
        self.keep = keep
    }

    public func create(config: GANConfig) throws {
        try FileManager.default.createDirectory(atPath: samples, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(config), to: path + "/config.json")
    }

    /// The newest checkpoint of the newest run under `runsDir` (by the checkpoint's time).
    public static func newestCheckpoint(runsDir: String = "runs") -> String? {
        let fm = FileManager.default
        guard let runs = try? fm.contentsOfDirectory(atPath: runsDir) else { return nil }
        var best: (String, Date)?
        for r in runs {
            guard let p = CheckpointStore(directory: runsDir + "/" + r + "/checkpoints").latest(),
                  let d = (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date else { continue }
            if best == nil || d > best!.1 { best = (p, d) }
        }
        return best?.0
    }
}

/// The 64 latents of the fixed-noise sample grid.
public func fixedNoise(_ config: GANConfig, count: Int = 64) -> Tensor {
    latents(seed: config.seed, .fixedNoise, step: 0, indices: Array(0..<count), dim: config.latentDim)
}

/// Drives a `GANTrainer`: sample grids and checkpoints every K steps, metrics lines, resume.
public final class TrainingSession {
    public let trainer: GANTrainer
    public let folder: RunFolder
    public var sampleEvery: Int
    public var checkpointEvery: Int
    /// Only this rank writes files (rank 0 in a distributed run).
    public let writes: Bool
    private var metricsHandle: FileHandle?

    public init(trainer: GANTrainer, folder: RunFolder, sampleEvery: Int, checkpointEvery: Int, writes: Bool = true) throws {
        self.trainer = trainer
        self.folder = folder
        self.sampleEvery = sampleEvery
        self.checkpointEvery = checkpointEvery
        self.writes = writes
        if writes {
            try folder.create(config: trainer.config)
            let mp = folder.path + "/metrics.jsonl"
            if !FileManager.default.fileExists(atPath: mp) { FileManager.default.createFile(atPath: mp, contents: nil) }
            metricsHandle = FileHandle(forWritingAtPath: mp)
            metricsHandle?.seekToEndOfFile()
        }
    }

    deinit { try? metricsHandle?.close() }

    /// Restores weights, optimizer state, step and data position from `path`.
    public static func resume(_ trainer: GANTrainer, from ckpt: Checkpoint, path: String) throws {
        // The run may be extended (more steps), except a progressive one, whose growth schedule
        // is laid out over its total steps.
        var same = trainer.config
        same.steps = ckpt.config.steps
        guard ckpt.config == same else {
            throw Checkpoint.Error(path: path, reason: "was written by a run with a different config; resume takes the config from the checkpoint")
        }
        if ckpt.config.progressive && trainer.config.steps != ckpt.config.steps {
            throw Checkpoint.Error(path: path, reason: "a progressive run's growth schedule is laid out over its \(ckpt.config.steps) steps; resume it with --steps \(ckpt.config.steps)")
        }
        try ckpt.restore(into: trainer.models, path: path)
        trainer.restore(step: ckpt.step, sampler: ckpt.sampler)
    }

    public func writeSampleGrid() throws -> String {
        let growth = trainer.models.growthSchedule?.state(at: max(trainer.step - 1, 0))
        if let g = growth { trainer.models.setGrowth(g) }
        let images = trainer.models.sample(fixedNoise(trainer.config))
        let p = folder.samples + String(format: "/step_%08d.png", trainer.step)
        try saveImageGrid(images, to: p, nrow: 8)
        return p
    }

    public func writeCheckpoint() throws -> String {
        try folder.checkpoints.save(Checkpoint(trainer: trainer))
    }

    func logMetrics(_ m: StepMetrics, seconds: Double) {
        guard let h = metricsHandle else { return }
        let line = String(format: "{\"step\":%d,\"d_loss\":%.6g,\"g_loss\":%.6g,\"d_real\":%.6g,\"d_fake\":%.6g,\"gp\":%.6g,\"g_grad_norm\":%.6g,\"d_grad_norm\":%.6g,\"resolution\":%d,\"alpha\":%.4g,\"step_seconds\":%.4g}\n",
                          trainer.step, m.dLoss, m.gLoss, m.dReal, m.dFake, m.gradientPenalty, m.gGradNorm, m.dGradNorm,
                          m.resolution, m.alpha, seconds)
        h.write(line.data(using: .utf8)!)
    }

    /// Trains to `config.steps`, calling `report` after every step. Writes a grid and a
    /// checkpoint at every multiple of the cadences and at the end.
    public func run(report: (StepMetrics) -> Void) throws {
        let total = trainer.config.steps
        while trainer.step < total {
            let t0 = Date()
            let m = try trainer.trainStep()
            guard m.dLoss.isFinite && m.gLoss.isFinite else {
                throw SessionError("training diverged at step \(trainer.step): d_loss \(m.dLoss), g_loss \(m.gLoss)")
            }
            if writes { logMetrics(m, seconds: Date().timeIntervalSince(t0)) }
            report(m)
            let s = trainer.step
            // Every K steps (K > 0) and always at the end.
            if writes && (s == total || (sampleEvery > 0 && s % sampleEvery == 0)) { _ = try writeSampleGrid() }
            if writes && (s == total || (checkpointEvery > 0 && s % checkpointEvery == 0)) { _ = try writeCheckpoint() }
        }
    }
}
