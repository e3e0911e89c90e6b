import ArgumentParser
import Tensors

struct Gan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "RingGAN: GAN training in Swift, from the tensor up.",
        subcommands: [Train.self, Sample.self, Interpolate.self, StyleMix.self, Evaluate.self, TrainClassifier.self,
                      Export.self, Import.self, Info.self])
}

BLASRuntime.selectKernels()
Gan.main()
