import ArgumentParser
import Datasets
import Foundation
import GAN
import Telemetry
import TrainingCLI

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
    @Flag(help: "Use the generator's own weights, not the moving average of them that --g-ema runs keep (and that is used by default).")
    var rawGenerator = false
    @Option(help: "Classifier (default: classifier-<dataset>.safetensors in the data folder, else in ~/.cache/ringgan, trained there on first use, about 10 s).")
    var classifier: String?
    @Option(parsing: .unconditional, help: "Generated samples; the real reference is as many train images (at most the whole split), drawn per class.")
    var samples: Int = 2000
    @Option(parsing: .unconditional, help: "Seed for the latents.") var seed: UInt64 = 4
    @Option(parsing: .unconditional, help: "Seed of the stratified draw of real reference images.") var referenceSeed: UInt64 = RealReference.defaultSeed
    @Flag(help: "Also score an untrained generator of the same config (the baseline).") var baseline = false
    @Option(help: "Score generated images from this .npy file instead of a checkpoint (float32 [N, 1, S, S] or [N, S, S] in [-1, 1], S 28, 32 or 64, e.g. PyTorch samples); the reference is N train images of --dataset.")
    var npy: String?
    @Option(help: "With --npy: the dataset whose train split is the reference.") var dataset: String = "mnist"
    @Option(help: "Folder for the TensorBoard event file with eval/fid, eval/classifier_score, eval/mode_entropy at the checkpoint's step (default: the checkpoint's run folder).")
    var logdir: String?
    @Flag(help: "Print one JSON object (the progress display goes to standard error).") var json = false
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.range("--samples", samples, 2...100_000, "FID needs a covariance")
        try FlagCheck.oneOf("--dataset", dataset, DatasetName.allCases.map { $0.rawValue })
    }

    /// `--classifier`, else the one that exists, else one trained now into the cache (with
    /// progress, saying where) so that a fresh install can score.
    func classifierPath(dataset: String, log: Logger) -> String {
        if let c = classifier { return c }
        if let c = ClassifierFile.existing(dataset) { return c }
        let out = ClassifierFile.newPath(dataset)
        guard let name = DatasetName(rawValue: dataset) else { fail("no digit classifier for dataset '\(dataset)'") }
        let looked = ClassifierFile.candidates(dataset).joined(separator: ", ")
        log.notice("no digit classifier for \(dataset) yet (looked in \(looked)): training one now (10 s on 2 cores in a release build), into \(out); later runs reuse it")
        var p: Telemetry.Progress?
        do {
            let trained = try ClassifierFile.train(dataset: name) { s, total, loss in
                if p == nil { p = makeProgress(total: total, label: "classifier", json: json) }
                p?.update(s, [("loss", String(format: "%.4f", loss))])
            }
            p?.finish()
            try ClassifierFile.write(trained, dataset: dataset, to: out)
            let line = String(format: "classifier: held-out accuracy %.2f%% on %d test images; wrote %@", trained.accuracy * 100,
                              trained.testCount, out)
            log.notice("\(line)")
        } catch { fail("could not make the digit classifier: \(error) (or give one with --classifier)") }
        return out
    }

    func run() throws {
        let log = logging.bootstrap("gan.evaluate")
        if let file = npy { return evaluateArray(file, log: log) }
        let (models, ckpt, path) = loadModels(checkpoint, rawGenerator: rawGenerator)
        var current: Telemetry.Progress?
        let progress = CheckpointEvaluation.Progress(
            phase: { label, total in
                let p = makeProgress(total: total, label: label, json: json)
                current = p
                return { p.update($0) }
            },
            phaseDone: { current?.finish() })
        let result: CheckpointEvaluation
        do {
            result = try CheckpointEvaluation(models: models, checkpoint: ckpt, path: path,
                                              classifier: classifierPath(dataset: ckpt.config.dataset, log: log), samples: samples,
                                              seed: seed, referenceSeed: referenceSeed, baseline: baseline, progress: progress)
        } catch { fail("\(error)") }
        // The scores as TensorBoard scalars at the checkpoint's step, beside the run's curves.
        do {
            let events = try result.writeEvents(directory: logdir ?? runFolder(ofCheckpoint: path))
            log.info("TensorBoard events: \(events)")
        } catch {
            log.warning("no TensorBoard events written: \(error)")
        }
        if json {
            print(try result.json())
        } else {
            for line in result.report { print(line) }
        }
    }
}
