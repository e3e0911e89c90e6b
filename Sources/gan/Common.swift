import Foundation
import GAN
import Telemetry

/// Writes to standard error as it comes (progress displays of --json commands).
func writeToStandardError(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}

/// A progress display: on standard output, or on standard error when standard output carries
/// JSON for machines.
func makeProgress(total: Int, label: String, json: Bool = false, initial: Int = 0) -> Telemetry.Progress {
    json ? Progress(total: total, label: label, initial: initial, output: writeToStandardError, isTerminal: isatty(2) != 0,
                    columns: { Progress.terminalColumns(fd: 2) })
        : Progress(total: total, label: label, initial: initial)
}

/// Prints to standard error and exits non-zero.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write("gan: error: \(message)\n".data(using: .utf8)!)
    exit(1)
}


/// Loads a checkpoint (default: the newest of the newest run, or with `model` of the newest run
/// of that model) into fresh models.
///
/// `rawGenerator`: sample from G itself, not the moving average of its weights.
func loadModels(_ path: String?, model: ModelKind? = nil, rawGenerator: Bool = false) -> (GANModels, Checkpoint, String) {
    guard let p = path ?? RunFolder.newestCheckpoint(model: model) else {
        if let model {
            fail("no checkpoint given and no \(model.rawValue) run found under ./runs (train one with gan train --model \(model.rawValue), or pass --checkpoint PATH)")
        }
        fail("no checkpoint given and none found under ./runs (train first, or pass --checkpoint PATH)")
    }
    do {
        let ckpt = try Checkpoint.read(path: p)
        let models = GANModels(config: ckpt.config)
        try ckpt.restore(into: models, path: p)
        if let s = models.growthSchedule { models.setGrowth(s.state(at: max(ckpt.step - 1, 0))) }
        models.samplesFromAverage = !rawGenerator
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
