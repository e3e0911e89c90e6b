import Foundation

/// What one training step measured (means over this rank's shard), as one value for every place
/// that shows it: the coordinator's `stepDone` message (JSON), `metrics.jsonl` and `--json` lines
/// (its JSON encoding, numbers as numbers), the progress line (`progressFields`) and TensorBoard
/// (`scalars`). The JSON keys are the `metrics.jsonl` names.
public struct StepMetrics: Codable, Sendable, Equatable {
    /// The step this was (1 for the first).
    public var step = 0
    public var dLoss: Float = 0
    public var gLoss: Float = 0
    /// Mean D(x): a probability or a raw critic score, as the loss's `scores` says.
    public var dReal: Float = 0
    /// Mean D(G(z)), likewise.
    public var dFake: Float = 0
    public var gradientPenalty: Float = 0
    /// Gradient norms, measured only on the steps that are logged (0 otherwise).
    public var gGradNorm: Float = 0
    public var dGradNorm: Float = 0
    public var resolution = 0
    public var alpha: Float = 1
    /// Seconds the step took (0 until the session that runs it measures it).
    public var seconds: Double = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case step, dLoss = "d_loss", gLoss = "g_loss", dReal = "d_real", dFake = "d_fake", gradientPenalty = "gp"
        case gGradNorm = "g_grad_norm", dGradNorm = "d_grad_norm", resolution, alpha, seconds = "step_seconds"
    }

    /// A metric a loss adds to what is shown (`GANLoss.extraMetrics`).
    public struct Extra: Sendable {
        /// Its name on the progress line.
        public let key: String
        /// Its TensorBoard tag.
        public let tag: String
        public let value: @Sendable (StepMetrics) -> Float
        public init(key: String, tag: String, value: @escaping @Sendable (StepMetrics) -> Float) {
            self.key = key
            self.tag = tag
            self.value = value
        }

        public static let gradientPenalty = Extra(key: "gp", tag: "wgan_gp/penalty") { $0.gradientPenalty }
    }

    /// The progress line's fields: losses, scores, the loss's extra metrics, and the growth
    /// state of a progressive run.
    public func progressFields(_ config: GANConfig) -> [(String, String)] {
        func f(_ v: Float) -> String { String(format: "%.4f", v) }
        var kv: [(String, String)] = [("d_loss", f(dLoss)), ("g_loss", f(gLoss)), ("D(x)", f(dReal)), ("D(G(z))", f(dFake))]
        for e in config.loss.loss.extraMetrics { kv.append((e.key, f(e.value(self)))) }
        if config.progressive { kv.append(("res", "\(resolution)")); kv.append(("alpha", String(format: "%.2f", alpha))) }
        return kv
    }

    /// The TensorBoard scalars: `loss/d`, `loss/g`, `d/real`, `d/fake`, `grad_norm/d`,
    /// `grad_norm/g`, `speed/images_per_sec` (real images through D per second: batch x n_critic /
    /// step time) when the time is known, the loss's extra metrics (`wgan_gp/penalty`), and
    /// `progressive/resolution`, `progressive/alpha` for progressive runs.
    public func scalars(_ config: GANConfig) -> [(String, Float)] {
        var v: [(String, Float)] = [("loss/d", dLoss), ("loss/g", gLoss), ("d/real", dReal), ("d/fake", dFake),
                                    ("grad_norm/d", dGradNorm), ("grad_norm/g", gGradNorm)]
        if seconds > 0 { v.append(("speed/images_per_sec", Float(Double(config.batchSize * config.nCritic) / seconds))) }
        for e in config.loss.loss.extraMetrics { v.append((e.tag, e.value(self))) }
        if config.progressive {
            v.append(("progressive/resolution", Float(resolution)))
            v.append(("progressive/alpha", alpha))
        }
        return v
    }

    /// The means of several ranks' metrics, each weighted by its shard's size (the global
    /// batch's means); step, growth and time are the first one's. Gradient norms are of the
    /// summed gradients, the same on every rank that measures them (the others report 0): the
    /// largest is taken.
    public static func weightedMean(_ parts: [(metrics: StepMetrics, weight: Int)]) -> StepMetrics {
        guard var m = parts.first?.metrics else { return StepMetrics() }
        let total = Float(parts.reduce(0) { $0 + $1.weight })
        func mean(_ k: WritableKeyPath<StepMetrics, Float>) {
            m[keyPath: k] = parts.reduce(0) { $0 + $1.metrics[keyPath: k] * Float($1.weight) } / total
        }
        for k in [\StepMetrics.dLoss, \.gLoss, \.dReal, \.dFake, \.gradientPenalty] { mean(k) }
        m.gGradNorm = parts.map { $0.metrics.gGradNorm }.max() ?? 0
        m.dGradNorm = parts.map { $0.metrics.dGradNorm }.max() ?? 0
        return m
    }

    /// One JSON object on one line: `{"step":N,` first (lines are found by that prefix), then the
    /// other keys of these metrics and `extra`'s in sorted order (numbers as numbers).
    public func jsonLine(_ extra: [String: Double] = [:]) -> String {
        struct Line: Encodable {
            let metrics: StepMetrics
            let extra: [String: Double]
            struct Key: CodingKey {
                var stringValue: String
                var intValue: Int? { nil }
                init(stringValue: String) { self.stringValue = stringValue }
                init?(intValue: Int) { nil }
            }
            func encode(to encoder: Encoder) throws {
                try metrics.encode(to: encoder)
                var c = encoder.container(keyedBy: Key.self)
                for (k, v) in extra.sorted(by: { $0.key < $1.key }) { try c.encode(v, forKey: Key(stringValue: k)) }
            }
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        // Encoding numbers (non-finite ones as strings) cannot fail.
        let sorted = String(decoding: try! enc.encode(Line(metrics: self, extra: extra)), as: UTF8.self)
        let field = "\"step\":\(step)"
        guard let r = sorted.range(of: field + ","), sorted.hasPrefix("{") else { return sorted }
        var rest = sorted
        rest.removeSubrange(r)
        return "{" + field + "," + rest.dropFirst()
    }
}
