import ArgumentParser
import GAN
import Telemetry
import Tensors
import TrainingCLI

struct StyleMix: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "style-mix",
        abstract: "Write StyleGAN's style-mixing grid: row sources give the coarse styles, column sources the fine ones.")
    @Option(help: "Checkpoint of a stylegan run (default: newest of the newest stylegan run under ./runs).") var checkpoint: String?
    @Flag(help: "Use the generator's own weights, not the moving average of them that --g-ema runs keep (and that is used by default).")
    var rawGenerator = false
    @Option(parsing: .unconditional, help: "Sources per side (1...\(StyleMix.maxCount)).") var count: Int = 6
    @Option(parsing: .unconditional, help: "Crossover layer: layers before it take the row source's w (default: half the layers).") var crossover: Int?
    @Option(parsing: .unconditional, help: "Seed.") var seed: UInt64 = 3
    @Option(help: "Output PNG (default: <run>/style-mix.png).") var out: String?
    @Option(parsing: .unconditional, help: "StyleGAN: truncation psi (w = mean w + psi (w - mean w); 1 is none, 0.7 is typical).") var truncation: Float?
    @OptionGroup var logging: LogOptions

    /// The most sources per side: the grid has (count + 1)^2 images.
    static let maxCount = 32

    func validate() throws {
        try FlagCheck.range("--count", count, 1...StyleMix.maxCount, "the grid has (count + 1)^2 images")
        try FlagCheck.atLeast("--crossover", crossover, 0)
        try FlagCheck.nonNegative("--truncation", truncation, "1: none, 0.7 is typical")
    }

    func run() throws {
        _ = logging.bootstrap("gan")
        let (models, ckpt, path) = loadModels(checkpoint, model: .stylegan, rawGenerator: rawGenerator)
        guard let g = models.samplingGenerator as? StyleGenerator else { fail("\(path) is a \(ckpt.config.model.rawValue) model; style mixing needs stylegan") }
        applyTruncation(truncation, to: models, path)
        let k = crossover ?? g.numLayers / 2
        guard k >= 0 && k <= g.numLayers else { throw ValidationError("--crossover must be in 0...\(g.numLayers) for this generator (\(g.numLayers) layers), got \(k)") }
        let d = ckpt.config.latentDim
        let za = latents(seed: seed, .styleMix, step: 0, indices: Array(0..<count), dim: d)
        let zb = latents(seed: seed, .styleMix, step: 1, indices: Array(0..<count), dim: d)
        g.eval()
        let (a, b, mixed): (Tensor, Tensor, Tensor) = withNoGrad {
            // Every pair (row i, column j): coarse from A_i, fine from B_j.
            (g.generate(za), g.generate(zb), g.mixingGrid(rows: za, columns: zb, crossover: k))
        }
        // Layout (count + 1)^2: top row B sources, left column A sources, blank corner.
        let (c, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        var cells: [Tensor] = [Tensor.full([1, c, h, w], -1), b]
        for i in 0..<count { cells.append(a.narrow(0, i, 1)); cells.append(mixed.narrow(0, i * count, count)) }
        let o = out ?? defaultOut(path, "style-mix.png")
        try saveImageGrid(concat(cells, dim: 0), to: o, nrow: count + 1)
        print("wrote \(o) (\(count)x\(count) mixes at crossover \(k) of \(g.numLayers) layers)")
    }
}
