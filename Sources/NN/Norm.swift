import Tensors

/// Sums per-channel statistics over every rank of a data-parallel run (SyncBatchNorm). The
/// distributed layer provides one; a single process needs none.
public protocol BatchNormSynchronizer: AnyObject {
    /// Returns the element-wise sum of `values` over all ranks. Every rank calls it in the same
    /// order with the same length.
    func allReduceSum(_ values: [Float]) -> [Float]
}

/// Sums `t` over all ranks; its backward sums the incoming gradients over all ranks too (each
/// rank's output depends on every rank's input), so it is differentiable again.
func allReduceSumOp(_ t: Tensor, _ sync: BatchNormSynchronizer) -> Tensor {
    let summed = sync.allReduceSum(t.toArray())
    let out = Tensor(shape: t.shape, values: summed)
    return recordCustom(out, "all_reduce_sum", [t]) { g in [allReduceSumOp(g, sync)] }
}

/// `nn.BatchNorm1d` / `nn.BatchNorm2d`: per-channel batch statistics in training (biased
/// variance to normalise, unbiased for the running estimate), running statistics in eval;
/// momentum 0.1, eps 1e-5, affine weight 1 and bias 0, buffers `running_mean`, `running_var`,
/// `num_batches_tracked`. With a `synchronizer` the statistics cover the global batch.
public final class BatchNorm: Module {
    public let numFeatures: Int
    public let eps: Float
    public let momentum: Float
    public var synchronizer: BatchNormSynchronizer?

    public init(_ numFeatures: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
        super.init()
        registerParameter("weight", Tensor.ones([numFeatures]))
        registerParameter("bias", Tensor.zeros([numFeatures]))
        registerBuffer("running_mean", Tensor.zeros([numFeatures]))
        registerBuffer("running_var", Tensor.ones([numFeatures]))
        registerBuffer("num_batches_tracked", Tensor(0))
    }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == numFeatures,
                     "BatchNorm(\(numFeatures)): input \(x.shape) does not have \(numFeatures) channels in dim 1")
        var bshape = [Int](repeating: 1, count: x.rank)
        bshape[1] = numFeatures
        let dims = [0] + Array(2..<x.rank)
        let w = parameter("weight").reshape(bshape), b = parameter("bias").reshape(bshape)
        let rm = buffer("running_mean"), rv = buffer("running_var")
        guard training else {
            return (x - rm.reshape(bshape)) / (rv.reshape(bshape) + eps).sqrt() * w + b
        }
        let mean: Tensor, variance: Tensor
        var n = x.count / numFeatures
        if let sync = synchronizer {
            // Global sums of x and x^2 and the global count, then E[x] and E[x^2] - E[x]^2.
            let local = concat([x.sum(dims: dims), (x * x).sum(dims: dims), Tensor(shape: [1], values: [Float(n)])], dim: 0)
            let global = allReduceSumOp(local, sync)
            n = Int(global[flat: 2 * numFeatures].rounded())
            let s = global.narrow(0, 0, numFeatures), ss = global.narrow(0, numFeatures, numFeatures)
            let m = s * (1 / Float(n))
            mean = m.reshape(bshape)
            variance = (ss * (1 / Float(n)) - m * m).reshape(bshape)
        } else {
            mean = x.mean(dims: dims, keepDim: true)
            variance = x.variance(dims: dims, keepDim: true)
        }
        withNoGrad {
            let m = mean.reshape([numFeatures]), v = variance.reshape([numFeatures])
            let unbias = n > 1 ? Float(n) / Float(n - 1) : 1
            for c in 0..<numFeatures {
                rm.data[c] = (1 - momentum) * rm.data[c] + momentum * m.data[c]
                rv.data[c] = (1 - momentum) * rv.data[c] + momentum * v.data[c] * unbias
            }
            buffer("num_batches_tracked").data[0] += 1
        }
        return (x - mean) / (variance + eps).sqrt() * w + b
    }
}

/// `nn.InstanceNorm2d(num_features)` with PyTorch's defaults: no affine, no running stats;
/// each sample and channel normalised over H and W.
public final class InstanceNorm2d: Module {
    public let numFeatures: Int
    public let eps: Float

    public init(_ numFeatures: Int, eps: Float = 1e-5) {
        self.numFeatures = numFeatures
        self.eps = eps
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "InstanceNorm2d: needs [N, C, H, W], got \(x.shape)")
        let mean = x.mean(dims: [2, 3], keepDim: true)
        let variance = x.variance(dims: [2, 3], keepDim: true)
        return (x - mean) / (variance + eps).sqrt()
    }
}
