import ArgumentParser
import Tensors
import TrainingCLI

struct Gan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "RingGAN: GAN training in Swift, from the tensor up.",
        discussion: """
        Exit status: 0 done; 1 the command failed (a file it could not read or write, a checkpoint \
        that does not fit the command, training data it could not load); 64 a flag is malformed, \
        out of its range, or does not fit the others or the data (named with the accepted values), or \
        --name names a folder that already holds a run (--resume auto continues it); \
        130 / 143 `gan train` was interrupted by SIGINT / SIGTERM (after writing a checkpoint and a \
        grid of its last step and printing the command that resumes the run).
        """,
        version: BuildInfo.versionText("gan"),
        subcommands: [Train.self, Sample.self, Interpolate.self, StyleMix.self, Evaluate.self, TrainClassifier.self,
                      Export.self, Import.self, Verify.self, Compare.self, Info.self])
}

BLASRuntime.selectKernels()
ProcessEnvironment.applyOrExit("gan")
Gan.main()
