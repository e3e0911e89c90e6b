import ArgumentParser
import Foundation
import GAN
import Telemetry
import Tensors
import TrainingCLI

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write samples from a checkpoint: an 8x8 PNG grid and/or the images as a .npy array.",
        discussion: """
        Each --out is chosen by its extension: NAME.npy gets the images as float32 [N, C, H, W] in [-1, 1] \
        (C order, numpy.load reads it); any other name gets a PNG grid. Give --out twice for both. \
        --latents z.npy uses those latents ([N, latent_dim], float32 or float64) instead of drawing --count \
        of them from --seed; --latents-out writes the latents used. The generator runs in eval mode \
        (BatchNorm running statistics), as PyTorch's model.eval().
        """)
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs; with --truncation, of the newest stylegan run).") var checkpoint: String?
    @Flag(help: "Use the generator's own weights, not the moving average of them that --g-ema runs keep (and that is used by default).")
    var rawGenerator = false
    @Option(help: "Output, by extension: .npy for the images as an array, otherwise a PNG grid; repeatable (default: <run>/sample.png).")
    var out: [String] = []
    @Option(parsing: .unconditional, help: "Number of samples (ignored with --latents).") var count: Int = 64
    @Option(parsing: .unconditional, help: "Seed for the latents.") var seed: UInt64 = 1
    @Option(help: "Latents from a .npy file, shape [N, latent_dim].") var latents: String?
    @Option(help: "Write the latents used to this .npy file ([N, latent_dim] float32).") var latentsOut: String?
    @Option(parsing: .unconditional, help: "Images per row of the PNG grid.") var nrow: Int = 8
    @Option(parsing: .unconditional, help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    /// The most samples one command draws.
    static let maxCount = 100_000

    func validate() throws {
        try FlagCheck.range("--count", count, 1...Sample.maxCount)
        try FlagCheck.range("--nrow", nrow, 1...1024)
        try FlagCheck.nonNegative("--truncation", truncation, "1: none, 0.7 is typical")
    }

    func run() throws {
        let log = logging.bootstrap("gan")
        let (models, ckpt, path) = loadModels(checkpoint, model: truncation == nil ? nil : .stylegan, rawGenerator: rawGenerator)
        applyTruncation(truncation, to: models, path)
        let d = ckpt.config.latentDim
        let z: Tensor
        if let lp = latents {
            do { z = try Npy.read(path: lp) } catch { fail("\(error)") }
            guard z.rank == 2, z.shape[1] == d, z.shape[0] > 0 else {
                fail("\(lp): latents of shape \(z.shape); this \(ckpt.config.model.rawValue) generator needs [N, \(d)]")
            }
        } else {
            z = GAN.latents(seed: seed, .fixedNoise, step: 1, indices: Array(0..<count), dim: d)
        }
        let n = z.shape[0]
        var parts: [Tensor] = []
        for s in stride(from: 0, to: n, by: 256) { parts.append(models.sample(z.narrow(0, s, min(256, n - s)))) }
        let images = parts.count == 1 ? parts[0] : concat(parts, dim: 0)
        if let lo = latentsOut {
            do { try Npy.write(z, to: lo) } catch { fail("\(error)") }
            log.info("wrote latents \(lo) \(z.shape)")
        }
        let outs = out.isEmpty ? [defaultOut(path, "sample.png")] : out
        for o in outs {
            do {
                if o.lowercased().hasSuffix(".npy") {
                    try Npy.write(images, to: o)
                } else {
                    try saveImageGrid(images, to: o, nrow: nrow)
                }
            } catch { fail("\(error)") }
            print("wrote \(o) (\(n) samples \(images.shape.dropFirst().map(String.init).joined(separator: "x")) from \(path), step \(ckpt.step))")
        }
    }
}
