import ArgumentParser
import Foundation
import GAN
import TrainingCLI

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a generator (and discriminator) state_dict from safetensors into a RingGAN checkpoint.",
        discussion: """
        Reads a file as PyTorch writes it (safetensors.torch.save_file(G.state_dict(), "g.safetensors"): \
        any key order, float32 tensors, int64 num_batches_tracked) or as gan export writes it, loads it \
        strictly (every key, every shape) into the generator and writes a step-0 checkpoint \
        (step = total steps for progressive models) with fresh optimizer state: gan sample / interpolate / \
        evaluate read it, and gan train --resume fine-tunes it. The discriminator comes from --discriminator, \
        or is freshly initialised from --seed.

        The model is taken, in order of precedence, from the flags given here, the ringgan.config metadata \
        of a gan export file, and the keys and shapes (the tutorial's Generator: mlp; DCGANGenerator and its \
        32x32 variant: dcgan with image size, ngf, nc and latent size read from the weights). \
        By default the checkpoint goes to runs/import-<file name>/checkpoints/step_00000000.rgan, or, \
        when that folder holds an earlier import or run, to runs/import-<file name>-2 (-3, ...).
        """)
    @Option(help: "The generator's safetensors file.") var safetensors: String
    @Option(help: "The discriminator's safetensors file (optional).") var discriminator: String?
    @Option(help: "The checkpoint to write (default: runs/import-<name>/checkpoints/step_<step>.rgan, runs/import-<name>-2/... when taken).") var checkpointOut: String?
    @Option(help: "Model: \(ModelKind.allCases.map { $0.rawValue }.joined(separator: ", ")).") var model: String?
    @Option(help: "Loss of later fine-tuning: \(LossKind.allCases.map { $0.rawValue }.joined(separator: ", ")).") var loss: String?
    @Option(parsing: .unconditional, help: "Image size.") var imageSize: Int?
    @Option(parsing: .unconditional, help: "Generator feature maps (ngf).") var ngf: Int?
    @Option(parsing: .unconditional, help: "Discriminator feature maps (ndf).") var ndf: Int?
    @Option(parsing: .unconditional, help: "Image channels.") var nc: Int?
    @Option(parsing: .unconditional, help: "Latent size.") var latentDim: Int?
    @Option(parsing: .unconditional, help: "StyleGAN: w size.") var wDim: Int?
    @Option(parsing: .unconditional, help: "StyleGAN: mapping network layers.") var mappingLayers: Int?
    @Flag(help: "Progressive model.") var progressive = false
    @Option(help: "Dataset of later fine-tuning (mnist, fashion-mnist).") var dataset: String?
    @Option(help: "A standard MNIST-format folder for later fine-tuning.") var data: String?
    @Option(parsing: .unconditional, help: "Seed (fresh discriminator, data order of later fine-tuning).") var seed: UInt64?
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.oneOf("--model", model, ModelKind.allCases.map { $0.rawValue })
        try FlagCheck.oneOf("--loss", loss, LossKind.allCases.map { $0.rawValue })
        try FlagCheck.range("--image-size", imageSize, 1...4096)
        for (flag, value) in [("--ngf", ngf), ("--ndf", ndf), ("--latent-dim", latentDim), ("--w-dim", wDim)] {
            try FlagCheck.range(flag, value, 1...4096)
        }
        try FlagCheck.range("--nc", nc, 1...4)
        try FlagCheck.range("--mapping-layers", mappingLayers, 1...64)
    }

    func run() throws {
        let log = logging.bootstrap("gan.import")
        var o = TorchImport.Overrides()
        if let m = model {
            guard let k = ModelKind(rawValue: m) else { fail("unknown --model '\(m)'") }
            o.model = k
        }
        if let l = loss {
            guard let k = LossKind(rawValue: l) else { fail("unknown --loss '\(l)'") }
            o.loss = k
        }
        o.imageSize = imageSize; o.ngf = ngf; o.ndf = ndf; o.nc = nc; o.latentDim = latentDim; o.wDim = wDim
        o.mappingLayers = mappingLayers; o.progressive = progressive
        o.dataset = dataset; o.seed = seed
        // Absolute, as `gan train` stores it: a fine-tuning run resumed from another folder finds it.
        o.dataDir = data.map { $0.isEmpty ? $0 : URL(fileURLWithPath: $0).standardizedFileURL.path }
        let imported: TorchImport
        do { imported = try TorchImport(generatorPath: safetensors, discriminatorPath: discriminator, overrides: o) } catch { fail("\(error)") }
        if let w = imported.dataWarning { log.warning("\(w)") }
        // By default a run folder of its own: an import never overwrites an earlier one.
        var claimed: String?
        let out: String
        if let given = checkpointOut {
            out = given
        } else {
            do {
                (claimed, out) = try TorchImport.claimDefaultCheckpointPath(generatorPath: safetensors, step: imported.checkpoint.step)
            } catch { fail("\(error)") }
        }
        do { try imported.write(to: out) } catch {
            if let f = claimed { RunFolder.unclaim(f, marker: "checkpoints") }
            fail("\(error)")
        }
        log.info("model from \(imported.source.rawValue)\(o.describeModel && imported.source != .flags ? " and the flags" : "")")
        print("wrote \(out): \(TorchInterop.describe(imported.config)) generator from \(safetensors)"
              + (discriminator.map { ", discriminator from \($0)" } ?? ", fresh discriminator"))
    }
}
