import Foundation
import GAN

/// The run a training command starts: a new one from the training flags in a new run folder, or
/// one resumed from `--resume` (its checkpoint's config and length; `--steps` may change it) in the
/// checkpoint's run folder.
public struct RunStart {
    public var config: GANConfig
    /// The run folder.
    public var path: String
    /// The checkpoint a resumed run continues from, and its path.
    public var resume: (checkpoint: Checkpoint, path: String)?

    /// Resume-or-new-run, for `gan train` and `gan-coordinator`. Throws the checkpoint's read
    /// error, or a validation error naming the wrong flag.
    public init(training: TrainingFlags, run: RunFlags) throws {
        if let r = run.resume {
            let ckpt = try Checkpoint.read(path: r)
            config = ckpt.config
            config.steps = training.resumedSteps(checkpointStep: ckpt.step, runSteps: ckpt.config.steps)
            // checkpoints/step_X.rgan -> the run folder
            path = runFolder(ofCheckpoint: r)
            resume = (ckpt, r)
        } else {
            config = try training.config()
            path = run.newRunPath(config)
            resume = nil
        }
    }
}
