import Datasets
import Foundation
import Telemetry
import Tensors

/// `gan evaluate`'s pipeline: a checkpoint's generator scored against real images (FID with its
/// real-vs-real floor, classifier score, mode coverage), optionally beside an untrained generator
/// of the same config, and the scores written as TensorBoard scalars at the checkpoint's step.
public struct CheckpointEvaluation {
    public let checkpointPath: String
    public let step: Int
    public let samples: Int
    public let reference: RealReference
    public let fid: Double
    public let classes: ClassDistributionScores
    /// The FID of a second, disjoint real draw against the reference, and its size.
    public let floor: Double
    public let floorSize: Int
    /// An untrained generator's FID and class scores (with `baseline`).
    public let baseline: (fid: Double, classes: ClassDistributionScores)?

    /// Where each phase's progress goes: `phase(label, total)` returns the callback for that
    /// phase's completed count, and `phaseDone` ends it.
    public struct Progress {
        public var phase: (_ label: String, _ total: Int) -> (Int) -> Void
        public var phaseDone: () -> Void
        public init(phase: @escaping (_ label: String, _ total: Int) -> (Int) -> Void, phaseDone: @escaping () -> Void) {
            self.phase = phase
            self.phaseDone = phaseDone
        }
        public static var none: Progress { Progress(phase: { _, _ in { _ in } }, phaseDone: {}) }
    }

    /// The classifier of `dataset` that exists (data folder, then cache; `ClassifierFile`), else
    /// where `gan train-classifier` writes a new one.
    public static func defaultClassifierPath(_ dataset: String) -> String {
        ClassifierFile.existing(dataset) ?? ClassifierFile.newPath(dataset)
    }

    /// Scores `models` (restored from `checkpoint` at `path`): `samples` generated images from
    /// latents of `seed` against as many real train images drawn per class with `referenceSeed`.
    public init(models: GANModels, checkpoint: Checkpoint, path: String, classifier classifierPath: String? = nil,
                samples: Int, seed: UInt64, referenceSeed: UInt64 = RealReference.defaultSeed, baseline: Bool = false,
                progress: Progress = .none) throws {
        guard samples >= 2 else { throw SessionError("--samples must be at least 2 (FID needs a covariance)") }
        let config = checkpoint.config
        // The classifier reads gray 28x28 digits (32 cropped, 64 pooled): a generator of other
        // sizes or channels cannot be scored by it.
        guard [28, 32, 64].contains(config.imageSize), config.nc == 1 else {
            throw SessionError("\(path): its generator makes \(config.nc)-channel \(config.imageSize)x\(config.imageSize) images; "
                               + "FID here scores gray images of 28, 32 or 64 pixels (the classifier's input)")
        }
        let cp = classifierPath ?? CheckpointEvaluation.defaultClassifierPath(config.dataset)
        let clf = try ClassifierFile.load(cp, dataset: config.dataset)
        let real = try loadTrainingData(config)
        guard real.count >= 2 else { throw SessionError("\(real.source): \(real.count) images; FID needs at least 2") }
        let n = min(samples, real.count)
        let realDone = progress.phase("real features", n + min(n, real.count - n))
        let evaluator = FIDEvaluator(classifier: clf, dataset: real, count: samples, seed: referenceSeed) { done, _ in realDone(done) }
        progress.phaseDone()
        func score(_ m: GANModels, _ label: String) -> (Double, ClassDistributionScores) {
            let done = progress.phase(label, samples)
            let r = evaluator.score(m, count: samples, seed: seed) { d, _ in done(d) }
            progress.phaseDone()
            return (r.fid, r.classes)
        }
        (fid, classes) = score(models, "generate+score")
        self.baseline = baseline ? score(GANModels(config: config), "baseline") : nil
        checkpointPath = path
        step = checkpoint.step
        self.samples = samples
        reference = evaluator.reference
        floor = evaluator.floor
        floorSize = evaluator.floorSize
        classifierUsed = cp
    }

    /// The classifier whose features were used.
    public let classifierUsed: String

    /// What the floor compares: a second real draw, or the reference's halves when no train
    /// images are left over.
    public var floorNote: String {
        reference.floorIndices.count >= 2
            ? "\(floorSize) other train images drawn the same way vs the reference"
            : "the reference's two halves (\(floorSize) each): no train images left over"
    }

    /// The scores as TensorBoard scalars at the checkpoint's step (`eval/fid`,
    /// `eval/classifier_score`, `eval/mode_entropy`, `eval/real_floor_fid`, and the baseline's);
    /// returns the event file's path.
    public func writeEvents(directory: String) throws -> String {
        let events = try EventWriter(directory: directory)
        var values: [(String, Float)] = [("eval/fid", Float(fid)), ("eval/classifier_score", Float(classes.classifierScore)),
                                         ("eval/mode_entropy", Float(classes.modeEntropy)), ("eval/real_floor_fid", Float(floor))]
        if let b = baseline { values += [("eval/baseline_fid", Float(b.fid)), ("eval/baseline_classifier_score", Float(b.classes.classifierScore))] }
        events.scalars(values, step: step)
        events.close()
        return events.path
    }

    /// The result as one JSON object (`gan evaluate --json`).
    public func json() throws -> String {
        var o: [String: Any] = ["checkpoint": checkpointPath, "classifier": classifierUsed, "step": step, "fid": fid, "classifier_score": classes.classifierScore,
                                "mode_entropy": classes.modeEntropy, "histogram": classes.histogram, "samples": samples,
                                "real_floor_fid": floor, "real_floor_size": floorSize,
                                "reference": ["split": "train", "count": reference.indices.count, "per_class": reference.perClass,
                                              "seed": reference.seed, "split_count": reference.splitCount,
                                              "description": reference.describe()] as [String: Any]]
        if let b = baseline { o["baseline_fid"] = b.fid; o["baseline_classifier_score"] = b.classes.classifierScore }
        return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
    }

    /// The result for people, line by line.
    public var report: [String] {
        var lines = ["checkpoint \(checkpointPath) (step \(step)), \(samples) samples, classifier \(classifierUsed)",
                     "reference: \(reference.describe())",
                     String(format: "FID %.2f   (real-vs-real floor %.2f: %@)", fid, floor, floorNote),
                     String(format: "classifier score %.3f (of 10)   mode entropy %.3f (of %.3f)", classes.classifierScore,
                            classes.modeEntropy, Foundation.log(10.0)),
                     "predicted classes: \(classes.histogram)"]
        if let b = baseline {
            lines.append(String(format: "untrained generator: FID %.2f   classifier score %.3f   mode entropy %.3f", b.fid,
                                b.classes.classifierScore, b.classes.modeEntropy))
        }
        return lines
    }
}
