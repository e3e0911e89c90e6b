import Tensors

/// Mean over pixels of the standard deviation across the samples (dim 0): how much a batch of
/// generated images depends on the latent. Images in [-1, 1]; a generator that draws one shape
/// whatever z gives close to 0.
public func latentSpread(_ x: Tensor) -> Float {
    let n = x.shape[0]
    guard n > 1 else { return 0 }
    let p = x.count / n
    let v = x.buffer
    var total = 0.0
    for k in 0..<p {
        var s = 0.0, s2 = 0.0
        for i in 0..<n { let a = Double(v[i * p + k]); s += a; s2 += a * a }
        let m = s / Double(n)
        total += max(s2 / Double(n) - m * m, 0).squareRoot()
    }
    return Float(total / Double(p))
}

/// Watches the fixed-noise grids for mode collapse: the samples' spread across the grid's
/// latents (`latentSpread`) under `bound` for `grids` grids in a row raises a warning, once
/// per such run of grids (a recovery re-arms it).
public struct CollapseWatch: Sendable {
    /// Per-pixel standard deviation across latents under which a grid counts as collapsed.
    public var bound: Float
    /// Grids in a row under the bound before the warning.
    public var grids: Int
    public private(set) var lowInARow = 0
    private var warned = false

    /// The defaults: 0.05, three grids: between the collapsed default StyleGAN's 0.042 and
    /// DCGAN's 0.16 at step 300 (bench/RESULTS.md, "The collapse warning": the collapsed
    /// recipe's grids at 0.034-0.058 from step 200, DCGAN's and style-fast's at 0.13-0.24).
    public init(bound: Float = 0.05, grids: Int = 3) {
        self.bound = bound
        self.grids = max(1, grids)
    }

    /// Takes one grid's spread; returns the warning to give, if this grid completes a run of
    /// `grids` low ones.
    public mutating func observe(spread: Float, step: Int) -> String? {
        guard spread < bound else { lowInARow = 0; warned = false; return nil }
        lowInARow += 1
        guard lowInARow >= grids, !warned else { return nil }
        warned = true
        return "samples barely depend on the latent: mode collapse? (per-pixel std across the grid's latents "
            + String(format: "%.3f", spread) + " at step \(step), under \(bound) for \(lowInARow) grids in a row)"
    }
}
