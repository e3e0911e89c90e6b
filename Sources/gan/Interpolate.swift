import ArgumentParser
import GAN
import Telemetry
import Tensors
import TrainingCLI

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write rows of latent interpolations (lerp or slerp) as a PNG.")
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Option(help: "lerp or slerp.") var mode: String = "slerp"
    @Option(help: "Rows (pairs of endpoints).") var rows: Int = 8
    @Option(help: "Images per row.") var steps: Int = 10
    @Option(help: "Seed for the endpoints.") var seed: UInt64 = 2
    @Option(help: "Output PNG (default: <run>/interpolate-<mode>.png).") var out: String?
    @Option(help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    func run() throws {
        _ = logging.bootstrap("gan")
        guard mode == "lerp" || mode == "slerp" else { fail("--mode must be lerp or slerp") }
        guard steps >= 2 && rows >= 1 else { fail("--steps must be at least 2 and --rows at least 1") }
        let (models, ckpt, path) = loadModels(checkpoint)
        applyTruncation(truncation, to: models, path)
        let d = ckpt.config.latentDim
        let ends = latents(seed: seed, .interpolate, step: 0, indices: Array(0..<(2 * rows)), dim: d).toArray()
        var zs: [Float] = []
        for r in 0..<rows {
            let a = Array(ends[(2 * r * d)..<((2 * r + 1) * d)]), b = Array(ends[((2 * r + 1) * d)..<((2 * r + 2) * d)])
            for s in 0..<steps {
                let t = Float(s) / Float(steps - 1)
                zs += mode == "lerp" ? GAN.lerp(a, b, t) : GAN.slerp(a, b, t)
            }
        }
        let o = out ?? defaultOut(path, "interpolate-\(mode).png")
        try saveImageGrid(models.sample(Tensor(shape: [rows * steps, d], values: zs)), to: o, nrow: steps)
        print("wrote \(o) (\(rows) rows of \(steps), \(mode))")
    }
}
