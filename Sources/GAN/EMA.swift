import NN
import Tensors

extension GANModels {
    /// After a generator step: ema = decay * ema + (1 - decay) * G for every parameter, and G's
    /// buffers (BatchNorm running statistics) copied, as StyleGAN's and BigGAN's G_ema.
    public func updateEMA() {
        guard let e = emaGenerator, let decay = config.gEMA else { return }
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
