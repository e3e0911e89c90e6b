import Datasets
import Foundation
import NN
import Telemetry
import Tensors

/// How often a run writes unless flags say otherwise: the defaults of `gan train`'s and
/// `gan-coordinator`'s flags (`RunFlags`), of `CoordinatorOptions` and of `RunFolder`, named once.
public enum RunCadence {
    /// A sample grid every this many steps (and at the end).
    public static let sampleEvery = 100
    /// A checkpoint every this many steps (and at the end).
    public static let checkpointEvery = 500
    /// The checkpoints kept (older ones are removed).
    public static let keep = 3
    /// Metrics (`metrics.jsonl`, TensorBoard, the progress line) every this many steps.
    public static let logEvery = 1
}

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

    public init(path: String, keep: Int = RunCadence.keep) {
        self.path = path
        self.keep = keep
    }

    /// Removes the temporaries that writers killed before their rename left in the run folder,
    /// its `samples/` and its `checkpoints/` (`AtomicFile.removeStaleTemporaries`: a dead PID,
    /// untouched for a minute); a live writer's are left. Returns the paths removed.
    @discardableResult
    public func removeStaleTemporaries() -> [String] {
        [path, samples, path + "/checkpoints"].flatMap { AtomicFile.removeStaleTemporaries(in: $0) }
    }

    public func create(config: GANConfig) throws {
        try FileManager.default.createDirectory(atPath: samples, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(config), to: path + "/config.json")
    }

    /// What `path` holds that makes it a run folder already: its entries but `logs` (a launcher,
    /// `cluster/local.sh`, makes the run's `logs/` before it starts the coordinator); empty when
    /// there is no such folder.
    public static func contents(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != "logs" }.sorted()
    }

    /// Makes `path` the folder of a new run, so that no other run shares it: the folder is made
    /// (its parents too) or, when it exists, must hold nothing (`contents`); then its `marker` subfolder is made,
    /// which succeeds for one claimant only, so of two runs started at once on the same folder
    /// one gets it and the other `RunFolderTaken`. Throws `RunFolderTaken` for a folder that holds
    /// anything, a `SessionError` when it cannot be made.
    public static func claim(_ path: String, marker: String = "samples") throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        } catch {
            throw SessionError("cannot make the run folder \(path): \(folderProblem(path)) (choose another --runs-dir)")
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            let code = errno
            throw SessionError("cannot make the run folder \(path): \(folderProblem(path, errno: code)) (choose another --runs-dir)")
        }
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw SessionError("\(path) is a file, not a run folder; move it away or choose another --name")
        }
        let contents = Self.contents(path)
        guard contents.isEmpty else { throw RunFolderTaken(path: path, contents: contents) }
        if mkdir(path + "/" + marker, 0o755) != 0 {
            if errno == EEXIST { throw RunFolderTaken(path: path, contents: [marker]) }
            throw SessionError("cannot make \(path)/\(marker): \(String(cString: strerror(errno)))")
        }
    }

    /// The folder of a new run with a made-up name (`gan train` without `--name`, `gan import`):
    /// `base` claimed as `claim` does or, when that one is taken (another run started in the same
    /// second, an earlier import of the same file), `base-2`, `base-3`, ... Returns the path.
    public static func claimUnique(_ base: String, marker: String = "samples") throws -> String {
        for i in 1...1000 {
            let p = i == 1 ? base : "\(base)-\(i)"
            do { try claim(p, marker: marker); return p } catch is RunFolderTaken { continue }
        }
        throw SessionError("\(base) and the 999 names after it (\(base)-2 ...) are all taken; clear out the folder")
    }

    /// Undoes a `claim` whose run never started (its folder still empty but for `marker`).
    public static func unclaim(_ path: String, marker: String = "samples") {
        rmdir(path + "/" + marker)
        rmdir(path)
    }

    /// The newest checkpoint of the newest run under `runsDir` (by the checkpoint's time).
    public static func newestCheckpoint(runsDir: String = "runs", model: ModelKind? = nil) -> String? {
        let fm = FileManager.default
        guard let runs = try? fm.contentsOfDirectory(atPath: runsDir) else { return nil }
        var best: (String, Date)?
        for r in runs {
            // With `model`, only runs whose config.json says that model.
            if let model {
                guard let data = fm.contents(atPath: runsDir + "/" + r + "/config.json"),
                      let c = try? JSONDecoder().decode(GANConfig.self, from: data), c.model == model else { continue }
            }
            guard let p = CheckpointStore(directory: runsDir + "/" + r + "/checkpoints").latest(),
                  let d = (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date else { continue }
            if best == nil || d > best!.1 { best = (p, d) }
        }
        return best?.0
    }
}

/// A new run asked for a folder that already holds a run (or anything else).
public struct RunFolderTaken: Error, CustomStringConvertible {
    public let path: String
    /// What the folder holds (names), for the message.
    public let contents: [String]
    public init(path: String, contents: [String]) {
        self.path = path
        self.contents = contents
    }
    public var description: String {
        let shown = contents.prefix(4).joined(separator: ", ") + (contents.count > 4 ? ", ..." : "")
        return "\(path) already holds a run (\(shown))"
    }
}

/// The 64 latents of the fixed-noise sample grid.
public func fixedNoise(_ config: GANConfig, count: Int = 64) -> Tensor {
    latents(seed: config.seed, .fixedNoise, step: 0, indices: Array(0..<count), dim: config.latentDim)
}

/// Drives a `GANTrainer`: sample grids and checkpoints every K steps, metrics lines, a
/// TensorBoard event file, log lines, resume.
///
/// TensorBoard: each logged step's `StepMetrics.scalars`; the fixed-noise grid as the image
/// `samples` whenever a grid is written. Other code adds its own with `logScalars`.
public final class TrainingSession {
    public let trainer: GANTrainer
    public let folder: RunFolder
    public var sampleEvery: Int
    public var checkpointEvery: Int
    /// Metrics lines and TensorBoard scalars every K steps (and at the end); gradient norms are
    /// measured only on those steps.
    public var logEvery: Int = 1
    /// Stop after the step that reaches this time (writing the final grid and checkpoint then),
    /// even before `config.steps` (`gan train --time-limit`).
    public var deadline: Date?
    /// Asked after every step: true ends the run there as the deadline does (final grid and
    /// checkpoint written). `gan train` uses it for SIGINT and SIGTERM; a distributed worker for
    /// the step its coordinator named last (`gan-coordinator --time-limit`, or an interrupt).
    public var shouldEnd: (() -> Bool)?
    /// Whether the last `run` ended at the deadline (or by `shouldEnd`) rather than at `config.steps`.
    public private(set) var stoppedByDeadline = false
    /// Only this rank writes files (rank 0 in a distributed run).
    public let writes: Bool
    /// The TensorBoard event file (nil when this rank does not write).
    public let events: EventWriter?
    /// Mode-collapse watch over the fixed-noise grids: each grid's spread across its latents is
    /// the TensorBoard scalar `samples/latent_spread`, and a run of low ones gives a warning.
    public var collapseWatch = CollapseWatch()
    /// Log lines (run folder, grids and checkpoints written). Messages at info and above.
    public var logger: Logger
    /// metrics.jsonl, opened for appending (-1 when this rank does not write).
    private var metricsFD: Int32 = -1
    /// metrics.jsonl lines lost to failed writes (a full disk); a warning names the first of
    /// each run of failures, a notice the recovery.
    public private(set) var droppedMetricLines = 0
    private var metricsFailing = false
    private var eventsFailing = false

    /// - logdir: the folder for the TensorBoard event file (default: the run folder).
    public init(trainer: GANTrainer, folder: RunFolder, sampleEvery: Int, checkpointEvery: Int, writes: Bool = true,
                logdir: String? = nil, logger: Logger = Logger(label: "gan.train")) throws {
        self.trainer = trainer
        self.folder = folder
        self.sampleEvery = sampleEvery
        self.checkpointEvery = checkpointEvery
        self.writes = writes
        self.logger = logger
        if writes {
            for p in folder.removeStaleTemporaries() { logger.notice("removed \(p): a temporary file left by a writer that was killed before it finished") }
            try folder.create(config: trainer.config)
            let mp = folder.path + "/metrics.jsonl"
            if !FileManager.default.fileExists(atPath: mp) { _ = FileManager.default.createFile(atPath: mp, contents: nil) }
            metricsFD = open(mp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard metricsFD >= 0 else { throw SessionError("\(mp): cannot open for appending: \(String(cString: strerror(errno)))") }
            events = try EventWriter(directory: logdir ?? folder.path)
        } else {
            events = nil
        }
    }

    deinit {
        if metricsFD >= 0 { close(metricsFD) }
        events?.close()
    }

    /// Restores weights, optimizer state, step and data position from `path`.
    public static func resume(_ trainer: GANTrainer, from ckpt: Checkpoint, path: String) throws {
        // The run may be extended (more steps), except a progressive one, whose growth schedule
        // is laid out over its total steps.
        guard ckpt.config.sameRun(as: trainer.config) else {
            throw Checkpoint.Error(path: path, reason: "was written by a run with a different config; resume takes the config from the checkpoint")
        }
        if ckpt.config.progressive && trainer.config.steps != ckpt.config.steps {
            throw Checkpoint.Error(path: path, reason: "a progressive run's growth schedule is laid out over its \(ckpt.config.steps) steps; resume it with --steps \(ckpt.config.steps)")
        }
        if let local = trainer.source as? LocalBatches, local.dataset.count != ckpt.sampler.count {
            throw Checkpoint.Error(path: path, reason: "its data position is for a data set of \(ckpt.sampler.count) images; "
                                   + "this one (\(local.dataset.source)) has \(local.dataset.count)")
        }
        try ckpt.restore(into: trainer.models, path: path)
        trainer.restore(step: ckpt.step, sampler: ckpt.sampler)
    }

    /// Writes the fixed-noise grid of the current step as `samples/step_XXXXXXXX.png` and as
    /// the TensorBoard image `samples`; returns the file's path.
    public func writeSampleGrid() throws -> String {
        let growth = trainer.models.growthSchedule?.state(at: max(trainer.step - 1, 0))
        if let g = growth { trainer.models.setGrowth(g) }
        let images = trainer.models.sample(fixedNoise(trainer.config))
        let p = folder.samples + String(format: "/step_%08d.png", trainer.step)
        let g = imageGrid(images, nrow: 8)
        let png = PNG.encode(width: g.width, height: g.height, channels: g.channels, pixels: g.pixels)
        try AtomicFile.write(png, to: p)
        events?.image("samples", png: png, width: g.width, height: g.height, channels: g.channels, step: trainer.step)
        let spread = latentSpread(images)
        events?.scalar("samples/latent_spread", spread, step: trainer.step)
        if let warning = collapseWatch.observe(spread: spread, step: trainer.step) { logger.warning("\(warning)") }
        events?.flush()
        logger.debug("sample grid written", metadata: ["path": .string(p), "step": .stringConvertible(trainer.step),
                                                       "latent_spread": .string(String(format: "%.4f", spread))])
        return p
    }

    public func writeCheckpoint() throws -> String {
        let p = try folder.checkpoints.save(Checkpoint(trainer: trainer))
        logger.info("checkpoint written", metadata: ["path": .string(p), "step": .stringConvertible(trainer.step)])
        return p
    }

    /// TensorBoard scalars at `step` (the distributed layer adds `dist/bytes_on_wire`,
    /// `dist/compression_ratio`; evaluation adds `eval/...`). Flushed at once. No-op on a rank
    /// that does not write.
    public func logScalars(_ values: [(String, Float)], step: Int) {
        events?.scalars(values, step: step)
        events?.flush()
    }

    /// Records one finished step: its `metrics.jsonl` line (`StepMetrics.jsonLine`) and its
    /// TensorBoard scalars (`StepMetrics.scalars`). `run` calls it; a driver with its own loop may too.
    public func logStep(_ m: StepMetrics) {
        guard writes else { return }
        if metricsFD >= 0 { appendMetrics(m.jsonLine() + "\n") }
        events?.scalars(m.scalars(trainer.config), step: m.step)
        checkEvents()
    }

    /// Appends one line to metrics.jsonl; a failed write (a full disk) loses that line only: the
    /// partial line is cut off, the loss counted and reported, and training goes on.
    private func appendMetrics(_ line: String) {
        let failure = Array(line.utf8).withUnsafeBytes { appendWhole(metricsFD, $0) }
        if let f = failure {
            droppedMetricLines += 1
            if !metricsFailing {
                logger.warning("\(folder.path)/metrics.jsonl: cannot append the step \(trainer.step) line (\(f)); dropping metrics lines until writes succeed again (checkpoints are written separately)")
            }
            metricsFailing = true
        } else if metricsFailing {
            metricsFailing = false
            logger.notice("\(folder.path)/metrics.jsonl: writing again; \(droppedMetricLines) line(s) were lost")
        }
    }

    /// Appends a run event (`events.jsonl`, `RunEvent`) when this rank writes; a failed write is
    /// a warning, never a reason to stop the run.
    public func record(_ e: RunEvent) {
        guard writes else { return }
        if let why = folder.record(e) { logger.warning("cannot record the run's \(e.event.rawValue) event: \(why)") }
    }

    /// How `run` ended, as the event log says it: at the run's steps, at the deadline, or by
    /// `shouldEnd` (an interrupt, or the coordinator's last step); decided where the loop stops.
    public private(set) var ending: RunEvent.Ending = .completed

    /// Reports the start and the end of a run of failed TensorBoard writes.
    private func checkEvents() {
        guard let e = events else { return }
        if let f = e.writeError, !eventsFailing {
            eventsFailing = true
            logger.warning("\(e.path): cannot append TensorBoard events (\(f)); dropping them until writes succeed again")
        } else if e.writeError == nil && eventsFailing {
            eventsFailing = false
            logger.notice("\(e.path): writing again; \(e.droppedEvents) event(s) were lost")
        }
    }

    /// Trains to `config.steps`, calling `report` after every step. Writes a grid and a
    /// checkpoint at every multiple of the cadences and at the end; the event file is flushed
    /// after every step.
    public func run(report: (StepMetrics) -> Void) throws {
        let total = trainer.config.steps
        defer { events?.flush() }
        while trainer.step < total {
            // A time limit (or `shouldEnd`: an interrupt, the coordinator's last step) ends the
            // run after the step that reaches it, as if it were the last.
            let pastDeadline = { self.deadline.map { Date() >= $0 } ?? false }
            let timeUp = { pastDeadline() || (self.shouldEnd?() ?? false) }
            let t0 = Date()
            let next = trainer.step + 1
            let logs = writes && (next == total || logEvery <= 1 || next % logEvery == 0)
            trainer.measuresGradNorms = logs
            var m = try trainer.trainStep()
            guard m.dLoss.isFinite && m.gLoss.isFinite else {
                throw SessionError("training diverged at step \(trainer.step): d_loss \(m.dLoss), g_loss \(m.gLoss)")
            }
            m.seconds = Date().timeIntervalSince(t0)
            if logs { logStep(m) }
            report(m)
            let s = trainer.step
            // Every K steps (K > 0) and always at the end.
            let last = s == total || timeUp()
            // The block cache holds the step's working memory; a checkpoint's copies and the
            // final grid would come on top of it (a run's peak): hand it back first.
            if writes && last { releaseCachedTensorMemory() }
            if writes && (last || (sampleEvery > 0 && s % sampleEvery == 0)) { _ = try writeSampleGrid() }
            if writes && (last || (checkpointEvery > 0 && s % checkpointEvery == 0)) {
                releaseCachedTensorMemory()
                _ = try writeCheckpoint()
            }
            events?.flush()
            if last && s < total {
                stoppedByDeadline = true
                ending = pastDeadline() ? .timeLimit : .stopRequest
                logger.info(ending == .timeLimit ? "time limit reached" : "ending the run early, as asked", metadata: ["step": .stringConvertible(s)])
                break
            }
        }
    }
}

/// The run folder a checkpoint belongs to: `<run>` for `<run>/checkpoints/step_X.rgan`, else the
/// checkpoint's own folder.
public func runFolder(ofCheckpoint path: String) -> String {
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
    return dir.lastPathComponent == "checkpoints" ? dir.deletingLastPathComponent().path : dir.path
}
