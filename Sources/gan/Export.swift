import ArgumentParser
import Foundation
import GAN
import TrainingCLI

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's generator (and discriminator) as safetensors with PyTorch state_dict keys.",
        discussion: """
        The file holds the generator's state_dict: parameters and buffers (BatchNorm running_mean, \
        running_var, and num_batches_tracked as int64), with the keys and shapes of the tutorial's PyTorch \
        class for the same structure (mlp: Generator, dcgan at 64x64: DCGANGenerator, dcgan at 32x32: its \
        32x32 variant), so in PyTorch:

          G.load_state_dict(safetensors.torch.load_file("generator.safetensors"), strict=True)

        --include-discriminator writes the discriminator's state_dict to a second file (same key rules), \
        which loads into the tutorial's Discriminator / DCGANDiscriminator / SNDiscriminator. The metadata \
        names the PyTorch class (pytorch.class), the step and the RingGAN config (ringgan.config), which \
        gan import reads back.
        """)
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Flag(help: "Use the generator's own weights, not the moving average of them that --g-ema runs keep (and that is used by default).")
    var rawGenerator = false
    @Option(help: "Format (safetensors).") var format: String = "safetensors"
    @Option(help: "Output file (default: <run>/generator.safetensors).") var out: String?
    @Flag(help: "Also write the discriminator.") var includeDiscriminator = false
    @Option(help: "The discriminator's file (default: beside --out, 'generator' in its name replaced by 'discriminator', else with -discriminator added).")
    var discriminatorOut: String?
    @OptionGroup var logging: LogOptions

    /// `runs/x/generator.safetensors` -> `runs/x/discriminator.safetensors`; `g.safetensors` ->
    /// `g-discriminator.safetensors`.
    static func discriminatorPath(for out: String) -> String {
        let url = URL(fileURLWithPath: out)
        let name = url.lastPathComponent
        let dir = (out as NSString).deletingLastPathComponent
        let newName: String
        if let r = name.range(of: "generator", options: .backwards) {
            newName = name.replacingCharacters(in: r, with: "discriminator")
        } else {
            let ext = url.pathExtension
            newName = ext.isEmpty ? name + "-discriminator" : String(name.dropLast(ext.count + 1)) + "-discriminator." + ext
        }
        return dir.isEmpty ? newName : dir + "/" + newName
    }

    func validate() throws {
        try FlagCheck.oneOf("--format", format, ["safetensors"])
        if let d = discriminatorOut, !includeDiscriminator { throw ValidationError("--discriminator-out \(d) needs --include-discriminator") }
    }

    func run() throws {
        let log = logging.bootstrap("gan.export")
        let (models, ckpt, path) = loadModels(checkpoint, rawGenerator: rawGenerator)
        let o = out ?? defaultOut(path, "generator.safetensors")
        let c = ckpt.config
        do {
            try TorchInterop.write(models.samplingGenerator, config: c, step: ckpt.step, to: o)
        } catch { fail("\(error)") }
        let cls = TorchInterop.pytorchClass(c, discriminator: false)
        print("wrote \(o): generator\(models.emaGenerator != nil && !rawGenerator ? " (the EMA of its weights)" : ""), \(models.generator.stateDict().count) tensors, step \(ckpt.step)"
              + (cls.map { ", loads into \($0)" } ?? ""))
        if includeDiscriminator {
            let dp = discriminatorOut ?? Export.discriminatorPath(for: o)
            guard dp != o else { fail("--discriminator-out must differ from --out") }
            do {
                try TorchInterop.write(models.discriminator, config: c, step: ckpt.step, discriminator: true, to: dp)
            } catch { fail("\(error)") }
            let dcls = TorchInterop.pytorchClass(c, discriminator: true)
            print("wrote \(dp): discriminator, \(models.discriminator.stateDict().count) tensors"
                  + (dcls.map { ", loads into \($0)" } ?? ""))
        }
        log.debug("exported", metadata: ["checkpoint": .string(path)])
    }
}
