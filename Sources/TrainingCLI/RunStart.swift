import ArgumentParser
import Foundation
import GAN

/// The run a training command starts: a new one from the training flags in a new run folder, or
/// one resumed from `--resume` (its checkpoint's config and length; `--steps` may change it) in the
/// checkpoint's run folder. `--resume auto` resumes `<runs-dir>/<name>` from its newest checkpoint
/// that reads back whole, as `--resume` with that path would, or starts it fresh from the flags
/// when it has none (what a restarted coordinator does). A new run never shares a folder: its
/// folder is claimed (`claimFolder`) before anything is written, and a `--name` whose folder holds
/// a run is refused, naming `--resume auto`.
public struct RunStart {
    public var config: GANConfig
    /// The run folder.
    public var path: String
    /// The checkpoint a resumed run continues from, and its path.
    public var resume: (checkpoint: Checkpoint, path: String)?
    /// What `--resume auto` found and decided (resumed from which checkpoint, or fresh), for the
    /// log; empty otherwise.
    public var notes: [String] = []
    /// What `--resume auto` passed over (checkpoints that do not read back whole, training flags
    /// that differ from the run's config), for the log as warnings.
    public var warnings: [String] = []

    /// The `--resume` value that picks the checkpoint by itself.
    public static let auto = "auto"

    /// How a new run's folder is claimed: the `--name` given (exact), or a made-up name that
    /// moves on to `-2`, `-3`, ... when taken (unique); nil for a resumed run and `--resume auto`.
    enum Claim { case exact(String), unique }
    var claim: Claim?

    /// Resume-or-new-run, for `gan train` and `gan-coordinator`. Throws the checkpoint's read
    /// error, a validation error naming the wrong flag, or a `RunStartError` (`--resume auto` on
    /// a run folder it cannot resume).
    public init(training: TrainingFlags, run: RunFlags) throws {
        if run.resume == Self.auto {
            self = try RunStart(auto: training, run: run)
        } else if let r = run.resume {
            let ckpt = try Checkpoint.read(path: r)
            config = ckpt.config
            config.steps = training.resumedSteps(checkpointStep: ckpt.step, runSteps: ckpt.config.steps)
            // checkpoints/step_X.rgan -> the run folder
            path = runFolder(ofCheckpoint: r)
            resume = (ckpt, r)
            // Only the flags given are compared: a plain `--resume PATH --steps N` names no other.
            if let w = Self.differences("--resume \(r)", run: config, flags: training.given(over: config), path: path) { warnings.append(w) }
        } else {
            config = try training.config()
            path = run.newRunPath(config)
            resume = nil
            if let name = run.name {
                claim = .exact(name)
                // Said at once, before the data is loaded; `claimFolder` checks again, atomically.
                let contents = RunFolder.contents(path)
                if !contents.isEmpty { throw Self.taken(RunFolderTaken(path: path, contents: contents), name: name) }
            } else {
                claim = .unique
            }
        }
    }

    /// Makes a new run's folder, so that no other run shares it: call it once the flags and the
    /// data have been checked, before anything is written. A made-up name already taken (another
    /// run started in the same second) moves on to `-2`, `-3`, ..., changing `path`; a `--name`
    /// whose folder holds anything is a validation error naming `--resume auto`. Returns whether
    /// it made a folder (false for a resumed run), for `abandonFolder`.
    @discardableResult
    public mutating func claimFolder() throws -> Bool {
        switch claim {
        case nil:
            return false
        case .unique?:
            path = try RunFolder.claimUnique(path)
        case .exact(let name)?:
            do { try RunFolder.claim(path) } catch let t as RunFolderTaken { throw Self.taken(t, name: name) }
        }
        return true
    }

    /// Undoes `claimFolder` when the run could not start after all (the folder is removed only
    /// while it is still empty).
    public func abandonFolder() { RunFolder.unclaim(path) }

    static func taken(_ t: RunFolderTaken, name: String) -> ValidationError {
        ValidationError("--name \(name): \(t); to continue that run, run the same command with --resume auto "
            + "(it resumes \(t.path) from its newest checkpoint); for a new run, choose another --name")
    }

    /// `--resume auto`: the run folder is `<runs-dir>/<name>` (so --name is required). Its newest
    /// checkpoint that reads back whole (`CheckpointStore.newestVerified`, as a re-formed ring
    /// uses) is resumed as `--resume PATH` resumes it: the run's config and length (`--steps`
    /// may extend it), whatever the other training flags say (a difference is a warning). With no
    /// checkpoint at all the run starts fresh from the flags. Checkpoints that exist but none of
    /// which verifies are an error: starting over would bury them.
    init(auto training: TrainingFlags, run: RunFlags) throws {
        guard let name = run.name else {
            throw RunStartError("--resume auto needs --name: it resumes the run folder <runs-dir>/<name> (here \(run.runsDir)/NAME), and without a name every start is a new folder")
        }
        let fresh = try training.config()
        path = run.runsDir + "/" + name
        let store = CheckpointStore(directory: path + "/checkpoints")
        var skipped: [String] = []
        if let (p, ckpt) = store.newestVerified(skipped: { skipped.append("--resume auto: skipping checkpoint \($0): \($1)") }) {
            config = ckpt.config
            config.steps = training.resumedSteps(checkpointStep: ckpt.step, runSteps: ckpt.config.steps)
            resume = (ckpt, p)
            warnings = skipped
            // The command that restarts a run repeats its flags: all of them are compared.
            if let w = Self.differences("--resume auto", run: config, flags: fresh, path: path) { warnings.append(w) }
            notes = ["--resume auto: resuming \(path) from \(p) at step \(ckpt.step) of \(config.steps)"]
        } else if !store.list().isEmpty {
            throw RunStartError("--resume auto: none of the \(store.list().count) checkpoint(s) in \(store.directory) reads back whole ("
                + skipped.joined(separator: "; ") + "); move them away to start the run over")
        } else {
            config = fresh
            resume = nil
            notes = ["--resume auto: no checkpoint in \(store.directory); starting a fresh run"]
        }
    }
}

extension RunStart {
    /// The warning for a resumed run whose training flags ask for another config than the run's
    /// (which is used; the steps are not compared, `--steps` may extend a run), or nil.
    static func differences(_ how: String, run: GANConfig, flags: GANConfig, path: String) -> String? {
        guard !run.sameRun(as: flags) else { return nil }
        return "\(how): the training flags differ from the config of the run in \(path) ("
            + configDifferences(run, flags).joined(separator: ", ") + "); the run's config is used (a resumed run keeps its config)"
    }

    /// Why this start trains nothing (a fresh run of `--steps 0`, or a checkpoint already at or
    /// past the run's last step), as a sentence; nil when it has steps to train.
    public func nothingToTrain(_ training: TrainingFlags) -> String? {
        let from = resume?.checkpoint.step ?? 0
        guard from >= config.steps else { return nil }
        guard let (ckpt, p) = resume else {
            return "nothing to train: --steps \(config.steps) asks for no training steps; give --steps 1 or more"
        }
        let asked = training.stepsGiven.map { "--steps \($0)" } ?? "the run's own length (\(ckpt.config.steps) steps)"
        return "nothing to train: \(p) is at step \(ckpt.step), and \(asked) goes no further; give --steps above \(ckpt.step) to train on"
    }
}

/// `--resume auto` cannot go on with the run folder it was given.
public struct RunStartError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The config fields in which `a` and `b` differ, as `name: a vs b`.
func configDifferences(_ a: GANConfig, _ b: GANConfig) -> [String] {
    let fa = a.fieldValues, fb = b.fieldValues
    let keys = GANConfig.differingFields(fa, fb)
    return keys.isEmpty ? ["the configs differ"] : keys.map { "\($0): \(fa[$0] ?? "none") in the run, \(fb[$0] ?? "none") from the flags" }
}
