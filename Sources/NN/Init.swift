import Tensors

/// The tutorial's DCGAN init (`_init_weights`): conv and transposed-conv weights N(0, 0.02);
/// BatchNorm weight N(1, 0.02), bias 0. `convTransposed` false skips transposed convs (the
/// tutorial's discriminator only initialises Conv2d and BatchNorm2d).
public func dcganInit(_ model: Module, rng: inout RandomGenerator) {
    for m in model.modules() {
        if m is Conv2d || m is ConvTranspose2d, m.hasParameter("weight") {
            let w = m.parameter("weight")
            w.assign(Tensor.randn(w.shape, generator: &rng) * 0.02)
        } else if let bn = m as? BatchNorm {
            let w = bn.parameter("weight")
            w.assign(Tensor.randn(w.shape, generator: &rng) * 0.02 + 1)
            bn.parameter("bias").assign(Tensor.zeros(w.shape))
        }
    }
}
