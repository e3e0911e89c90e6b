import Tensors

/// The state `torch.nn.utils.spectral_norm` adds to a layer: the layer's `weight` parameter
/// becomes `weight_orig`, with buffers `weight_u` and `weight_v`; each training forward runs
/// `powerIterations` power iterations (updating u and v) and uses weight_orig / sigma, sigma =
/// u . (W v) with u, v held constant; eval uses the stored u and v.
public final class SpectralNormState {
    public let powerIterations: Int
    public let eps: Float
    /// The dim of the weight treated as rows: 0, or 1 for transposed convolutions (as PyTorch).
    public let dim: Int

    init(powerIterations: Int, eps: Float, dim: Int) {
        self.powerIterations = powerIterations
        self.eps = eps
        self.dim = dim
    }

    /// The weight as a [rows, cols] matrix.
    func matrix(_ w: Tensor) -> Tensor {
        var t = w
        if dim != 0 {
            var order = Array(0..<w.rank)
            order.remove(at: dim)
            t = w.permute([dim] + order)
        }
        return t.reshape([t.shape[0], -1])
    }

    func normalize(_ t: Tensor) -> Tensor {
        let n = max(t.norm(dims: [0]).item, eps)
        return t * (1 / n)
    }

    func weight(of m: Module) -> Tensor {
        let w = m.parameter("weight_orig")
        let u = m.buffer("weight_u"), v = m.buffer("weight_v")
        let mat = matrix(w)
        if m.training {
            withNoGrad {
                let md = mat.detach()
                for _ in 0..<powerIterations {
                    v.assign(normalize(mv(md.t, u)))
                    u.assign(normalize(mv(md, v)))
                }
            }
        }
        let sigma = dot(u.copy(), mv(mat, v.copy()))
        return w / sigma
    }
}

/// Applies spectral normalisation to `module`'s weight in place, like
/// `torch.nn.utils.spectral_norm(module)`, and returns it. u and v start as normalised
/// standard-normal vectors from `rng`.
@discardableResult
public func spectralNorm<M: WeightedModule>(_ module: M, powerIterations: Int = 1, eps: Float = 1e-12,
                                            rng: inout RandomGenerator) -> M {
    precondition(module.spectral == nil, "spectralNorm: already applied")
    let w = module.parameter("weight")
    let dim = module is ConvTranspose2d ? 1 : 0
    let state = SpectralNormState(powerIterations: powerIterations, eps: eps, dim: dim)
    let mat = state.matrix(w)
    let (h, wd) = (mat.shape[0], mat.shape[1])
    let u = state.normalize(Tensor.randn([h], generator: &rng))
    let v = state.normalize(Tensor.randn([wd], generator: &rng))
    module.removeParameter("weight")
    module.registerParameter("weight_orig", w)
    module.registerBuffer("weight_u", u)
    module.registerBuffer("weight_v", v)
    module.spectral = state
    return module
}
