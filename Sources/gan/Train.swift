import ArgumentParser
import Datasets
import Foundation
import GAN
import Telemetry
import Tensors
import TrainingCLI

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GAN in one process on real MNIST digits (or --dataset / --data).",
        discussion: """
        Writes runs/<name>/: config.json, samples/step_*.png (8x8 grids from fixed noise), \
        checkpoints/step_*.rgan (the newest --keep kept) and metrics.jsonl. Ctrl-C (SIGINT) or \
        SIGTERM ends the run after the step in progress with a checkpoint and a grid, prints the \
        command that resumes it (--resume auto) and exits 130 / 143; a second Ctrl-C stops at once. \
        Loss defaults follow the tutorial (Adam(0.5, 0.999), lr 2e-4 unless the loss says otherwise):

        """ + GANLoss.summary)

    @OptionGroup var training: TrainingFlags
    @OptionGroup var output: RunFlags
    @Option(parsing: .unconditional, help: "Threads (cores) the engine uses (default: $RINGGAN_THREADS, else all cores).") var threads: Int?
    @Option(help: "Folder for the TensorBoard event file (default: the run folder; view with tensorboard --logdir runs).")
    var logdir: String?
    @Flag(help: "Print one JSON metrics line per step instead of the progress display.") var json = false
    @Option(help: "Stop after this much time, counted from the command's start (300, 45s, 5m, 1h30m), writing the final checkpoint and grid then, even before --steps (default: the preset's, if any).")
    var timeLimit: String?
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.range("--threads", threads, FlagCheck.threads)
        _ = try training.deadline(timeLimit: timeLimit, from: Date())
    }

    func run() throws {
        let started = Date()
        let log = logging.bootstrap("gan.train")
        // SIGINT / SIGTERM: the run ends after the step in progress, with its checkpoint and grid.
        Interrupts.install(program: "gan train", stopping: "finishing the current step, then writing a checkpoint and a sample grid")
        let deadline = try training.deadline(timeLimit: timeLimit, from: started)
        ThreadPool.setThreads(threads ?? ThreadPool.defaultThreads)
        let start: RunStart
        do { start = try RunStart(training: training, run: output) } catch let e as ValidationError { throw e } catch { fail("\(error)") }
        for w in start.warnings { log.warning("\(w)") }
        for note in start.notes { log.notice("\(note)") }
        try trainLoop(start, deadline: deadline, log: log)
    }

    func trainLoop(_ given: RunStart, deadline: Date?, log: Logger) throws {
        var start = given
        let config = start.config
        let dataset: ImageDataset
        do { dataset = try loadTrainingData(config) } catch { fail("\(error)") }
        // A batch or channel count the data cannot give is the flags' fault: said before the
        // models are built or the run folder is made.
        do { try config.checkFits(dataset) } catch { throw ValidationError("\(error)") }
        let models = GANModels(config: config)
        let trainer = try GANTrainer(models: models, dataset: dataset)
        if let (ckpt, path) = start.resume {
            do { try TrainingSession.resume(trainer, from: ckpt, path: path) } catch { fail("\(error)") }
        }
        // Nothing to train (--steps 0, a checkpoint at the run's end): not a "done" as if it had
        // trained, and nothing written, once the flags, the data and the checkpoint are checked
        // and the models built (what bench/wholerun.py times as start-up).
        if let why = start.nothingToTrain(training) {
            log.notice("\(why); nothing was trained or written")
            return
        }
        // A new run's folder is its own (two runs started in the same second get two).
        do { try start.claimFolder() } catch let e as ValidationError { throw e } catch { fail("\(error)") }
        let runPath = start.path
        let session: TrainingSession
        do {
            session = try TrainingSession(trainer: trainer, folder: RunFolder(path: runPath, keep: output.keep),
                                          sampleEvery: output.sampleEvery, checkpointEvery: output.checkpointEvery, logdir: logdir, logger: log)
        } catch { fail("\(error)") }
        session.deadline = deadline
        session.shouldEnd = { Interrupts.received != nil }
        session.logEvery = output.logEvery
        let summary = "run \(runPath): \(config.model.rawValue)\(config.progressive ? " (progressive)" : ""), \(config.loss.rawValue), "
            + "\(dataset.count) images from \(dataset.source), batch \(config.batchSize), steps \(trainer.step)..<\(config.steps), "
            + "G \(models.gParams.count) and D \(models.dParams.count) parameters, \(ThreadPool.shared.threads) thread(s), OpenBLAS \(BLASRuntime.coreName) kernels"
        log.info("\(summary)")
        if let e = session.events { log.info("TensorBoard events: \(e.path)") }
        session.record(RunEvent(.started, step: trainer.step, from: start.resume?.1))
        do { try run(session, deadline: deadline) } catch {
            session.record(RunEvent(.ended, step: trainer.step, ending: .failed, reason: "\(error)", checkpoint: session.folder.checkpoints.latest()))
            throw error
        }
        session.record(RunEvent(.ended, step: trainer.step, ending: session.ending, checkpoint: session.folder.checkpoints.latest()))
        try report(session, runPath: runPath, log: log)
    }

    /// The training loop with its progress line (or, with --json, a line per step).
    func run(_ session: TrainingSession, deadline: Date?) throws {
        let config = session.trainer.config
        let progress = Progress(total: config.steps, label: "train", initial: session.trainer.step)
        if let d = deadline { progress.timeLeft = { d.timeIntervalSinceNow } }   // the ETA honours --time-limit
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
    }

    /// How the run ended: interrupted (the resume command, exit 130/143), stopped by the time
    /// limit, or done.
    func report(_ session: TrainingSession, runPath: String, log: Logger) throws {
        let trainer = session.trainer, config = session.trainer.config
        if let signal = Interrupts.received, trainer.step < config.steps {
            let ckpt = session.folder.checkpoints.latest() ?? "none"
            log.notice("\(Interrupts.name(signal)): stopped at step \(trainer.step) of \(config.steps); checkpoint \(ckpt), samples in \(session.folder.samples)")
            Interrupts.printResumeCommand(runPath: runPath)
            throw ExitCode(Interrupts.exitStatus(signal))
        }
        if session.stoppedByDeadline { log.info("time limit reached: stopped at step \(trainer.step) of \(config.steps)") }
        // The engine's GEMM work only for machines (--json: bench/wholerun.py reads it), not on
        // the line a person reads.
        log.info("done: samples in \(session.folder.samples), checkpoints in \(session.folder.checkpoints.directory)",
                 metadata: json ? ["gemm_gflop": .string(String(format: "%.3f", EngineCounters.gemmGFLOP))] : [:])
    }
}
