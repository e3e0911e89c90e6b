import DataParallel
import Tensors

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
        if synchronizer == nil || synchronizer!.worldSize <= 1 {
            // One process: the fused op (one pass each for mean, variance and output).
            let (y, stats) = batchNormTraining(x, weight: parameter("weight"), bias: parameter("bias"), eps: eps)
            updateRunningStatistics(mean: stats.mean, variance: stats.variance, count: stats.count)
            return y
        }
        let mean: Tensor, variance: Tensor
        var n = x.count / numFeatures
        if let sync = synchronizer, sync.worldSize > 1 {
            // Each rank's count, mean and sum of squared deviations (two-pass, as without sync)
            // go into its own slot of a vector that is summed over the ranks (an all-gather);
            // every rank then merges the slots in rank order (Chan et al.'s parallel variance),
            // which avoids the cancellation of E[x^2] - E[x]^2. The sum's backward sums the
            // gradients over the ranks, so SyncBatchNorm's backward is exact too.
            let c = numFeatures, slot = 2 * c + 1, w = sync.worldSize
            let m = x.mean(dims: dims)
            let m2 = (x - m.reshape(bshape)).pow(2).sum(dims: dims)
            var parts: [Tensor] = []
            if sync.rank > 0 { parts.append(Tensor.zeros([sync.rank * slot])) }
            parts += [Tensor(shape: [1], values: [Float(n)]), m, m2]
            if sync.rank < w - 1 { parts.append(Tensor.zeros([(w - 1 - sync.rank) * slot])) }
            let all = allReduceSumOp(concat(parts, dim: 0), sync)
            let counts = (0..<w).map { Int(all[flat: $0 * slot].rounded()) }
            n = counts.reduce(0, +)
            var gm: Tensor? = nil
            for r in 0..<w where counts[r] > 0 {
                let term = all.narrow(0, r * slot + 1, c) * (Float(counts[r]) / Float(n))
                gm = gm.map { $0 + term } ?? term
            }
            var gm2: Tensor? = nil
            for r in 0..<w where counts[r] > 0 {
                let d = all.narrow(0, r * slot + 1, c) - gm!
                let term = all.narrow(0, r * slot + 1 + c, c) + d * d * Float(counts[r])
                gm2 = gm2.map { $0 + term } ?? term
            }
            mean = gm!.reshape(bshape)
            variance = (gm2! * (1 / Float(n))).reshape(bshape)
        } else {
            mean = x.mean(dims: dims, keepDim: true)
            variance = x.variance(dims: dims, keepDim: true)
        }
        updateRunningStatistics(mean: mean.toArray(), variance: variance.toArray(), count: n)
        return (x - mean) / (variance + eps).sqrt() * w + b
    }

    /// The running estimates after a training batch of `count` values per channel (biased
    /// `variance` in, unbiased into `running_var`), and one more batch tracked.
    private func updateRunningStatistics(mean: [Float], variance: [Float], count n: Int) {
        let rm = buffer("running_mean").data, rv = buffer("running_var").data
        let unbias = n > 1 ? Float(n) / Float(n - 1) : 1
        for c in 0..<numFeatures {
            rm[c] = (1 - momentum) * rm[c] + momentum * mean[c]
            rv[c] = (1 - momentum) * rv[c] + momentum * variance[c] * unbias
        }
        buffer("num_batches_tracked").data[0] += 1
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
