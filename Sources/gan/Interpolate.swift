import ArgumentParser
import GAN
import Telemetry
import Tensors
import TrainingCLI

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write rows of latent interpolations (lerp or slerp) as a PNG.")
    @Option(help: "Checkpoint (default: newest of the newest run under ./runs).") var checkpoint: String?
    @Flag(help: "Use the generator's own weights, not the moving average of them that --g-ema runs keep (and that is used by default).")
    var rawGenerator = false
    @Option(help: "lerp or slerp.") var mode: String = "slerp"
    @Option(parsing: .unconditional, help: "Rows (pairs of endpoints).") var rows: Int = 8
    @Option(parsing: .unconditional, help: "Images per row.") var steps: Int = 10
    @Option(parsing: .unconditional, help: "Seed for the endpoints.") var seed: UInt64 = 2
    @Option(help: "Output PNG (default: <run>/interpolate-<mode>.png).") var out: String?
    @Option(parsing: .unconditional, help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.oneOf("--mode", mode, ["lerp", "slerp"])
        try FlagCheck.range("--rows", rows, 1...256)
        try FlagCheck.range("--steps", steps, 2...256, "images per row, both ends included")
        try FlagCheck.nonNegative("--truncation", truncation, "1: none, 0.7 is typical")
    }

    func run() throws {
        _ = logging.bootstrap("gan")
        let (models, ckpt, path) = loadModels(checkpoint, rawGenerator: rawGenerator)
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
