import NN
import Tensors

extension GANModels {
    /// The decay used after generator step `step` (1 for the first): `--g-ema`'s value, ramped
    /// up as TensorFlow's ExponentialMovingAverage with num_updates does,
    /// min(decay, (1 + step) / (10 + step)), so the average forgets the initial weights within
    /// the first few hundred steps (StyleGAN2's EMA ramp-up has the same purpose). Without it a
    /// short run's samples come from nearly untrained weights: at 0.999 the initial weights still
    /// weigh e^-0.2 = 82% after 200 steps.
    public static func emaDecay(_ decay: Float, step: Int) -> Float {
        min(decay, Float(1 + max(step, 1)) / Float(10 + max(step, 1)))
    }

    /// After generator step `step`: ema = d * ema + (1 - d) * G for every parameter, with d the
    /// ramped-up decay (`emaDecay`), and G's buffers (BatchNorm running statistics) copied, as
    /// StyleGAN's and BigGAN's G_ema.
    public func updateEMA(step: Int) {
        guard let e = emaGenerator, let full = config.gEMA else { return }
        let decay = GANModels.emaDecay(full, step: step)
        let mine = generator.namedParameters(), avg = e.namedParameters()
        precondition(mine.count == avg.count)
        for ((n, g), (m, a)) in zip(mine, avg) {
            precondition(n == m && g.count == a.count, "EMA: \(n) and \(m) differ")
            let gp = g.data, ap = a.data
            for i in 0..<a.count { ap[i] = decay * ap[i] + (1 - decay) * gp[i] }
        }
        for ((_, b), (_, eb)) in zip(generator.namedBuffers(), e.namedBuffers()) { eb.assign(b) }
    }
}
