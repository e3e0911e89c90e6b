import DataParallel
import Tensors

/// Sums `t` over all ranks; its backward sums the incoming gradients over all ranks too (each
/// rank's output depends on every rank's input), so it is differentiable again.
func allReduceSumOp(_ t: Tensor, _ sync: BatchNormSynchronizer) -> Tensor {
    let summed = sync.allReduceSum(t.toArray())
    let out = Tensor(shape: t.shape, values: summed)
    return recordCustom(out, .allReduceSum, [t]) { g in [allReduceSumOp(g, sync)] }
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
        let w = parameter("weight").reshape(bshape), b = parameter("bias").reshape(bshape)
        let rm = buffer("running_mean"), rv = buffer("running_var")
        guard training else {
            return (x - rm.reshape(bshape)) / (rv.reshape(bshape) + eps).sqrt() * w + b
        }
        // One fused op (one pass each for mean, variance and output); with a synchronizer of
        // more than one rank, over the statistics of the whole group (SyncBatchNorm).
        let group = synchronizer.flatMap { $0.worldSize > 1 ? syncGroup($0) : nil }
        let (y, stats) = batchNormTraining(x, weight: parameter("weight"), bias: parameter("bias"), eps: eps, group: group)
        if keepsStatistics {
            kept.append(KeptStatistics(slot: slot, count: stats.count, mean: stats.mean,
                                       squaredDeviations: stats.variance.map { $0 * Float(stats.count) }))
        } else {
            updateRunningStatistics(mean: stats.mean, variance: stats.variance, count: stats.count)
        }
        return y
    }

    // MARK: exact mode

    /// One training forward's statistics of one micro-batch (exact mode).
    public struct KeptStatistics: Sendable {
        public var slot: Int
        public var count: Int
        public var mean: [Float]
        public var squaredDeviations: [Float]
        public init(slot: Int, count: Int, mean: [Float], squaredDeviations: [Float]) {
            self.slot = slot; self.count = count; self.mean = mean; self.squaredDeviations = squaredDeviations
        }
    }
    /// Exact mode (`GANConfig.microBatches`): each micro-batch is normalised with its own
    /// statistics (a worker's micro-batches are not synchronised), and training forwards keep
    /// them here under the micro-batch `slot` the trainer sets, instead of moving the running
    /// estimates: `updateRunningStatistics(merging:)` moves them once per forward of the global
    /// batch, with every micro-batch's statistics merged in slot order, the same on any number
    /// of workers.
    public var keepsStatistics = false
    /// The micro-batch the next training forward belongs to (exact mode).
    public var slot = 0
    /// The statistics kept since the last `takeKept`, in forward order.
    public private(set) var kept: [KeptStatistics] = []

    /// Returns the kept statistics and forgets them.
    public func takeKept() -> [KeptStatistics] {
        defer { kept = [] }
        return kept
    }

    /// Moves the running estimates once, by the statistics of `parts` (one forward's
    /// micro-batches, in slot order) merged as one batch.
    public func updateRunningStatistics(merging parts: [KeptStatistics]) {
        let merged = Self.merge(parts.map { ($0.count, $0.mean, $0.squaredDeviations) }, channels: numFeatures)
        updateRunningStatistics(mean: merged.mean, variance: merged.variance, count: merged.count)
    }

    /// Parts' counts, means and sums of squared deviations merged in order into one batch's
    /// count, mean and biased variance (Chan et al.'s parallel variance; parts with no values
    /// are skipped). SyncBatchNorm merges its ranks, and exact mode its micro-batches, with it.
    static func merge(_ parts: [(count: Int, mean: [Float], squaredDeviations: [Float])], channels c: Int)
        -> (count: Int, mean: [Float], variance: [Float])
    {
        let n = parts.reduce(0) { $0 + $1.count }
        precondition(n > 0, "BatchNorm(\(c)): the batch is empty")
        var gm = [Float](repeating: 0, count: c), gm2 = [Float](repeating: 0, count: c)
        var first = true
        for p in parts where p.count > 0 {
            let share = Float(p.count) / Float(n)
            for ch in 0..<c { gm[ch] = first ? p.mean[ch] * share : gm[ch] + p.mean[ch] * share }
            first = false
        }
        first = true
        for p in parts where p.count > 0 {
            for ch in 0..<c {
                let d = p.mean[ch] - gm[ch]
                let term = p.squaredDeviations[ch] + d * d * Float(p.count)
                gm2[ch] = first ? term : gm2[ch] + term
            }
            first = false
        }
        let inv = 1 / Float(n)
        return (n, gm, gm2.map { $0 * inv })
    }

    /// SyncBatchNorm's collectives over `sync`'s ranks, for the fused op.
    ///
    /// Each rank's count, mean and sum of squared deviations (two-pass, as without sync) are
    /// gathered, one slot per rank (`allGatherStatistics`: each rank sends its own slot, not a
    /// vector of N slots zero outside its own); every rank then
    /// merges the slots in rank order (Chan et al.'s parallel variance), which avoids the
    /// cancellation of E[x^2] - E[x]^2. Backward sums sum(gy) and sum(gy * (x - mean)) over the
    /// ranks in one more collective, as PyTorch's SyncBatchNorm does. Under create-graph the
    /// same backward is built from differentiable ops whose sums over the ranks sum their own
    /// gradients over the ranks, so it can be differentiated again.
    private func syncGroup(_ sync: BatchNormSynchronizer) -> BatchNormGroup {
        let c = numFeatures, eps = eps
        return BatchNormGroup(
            statistics: { count, mean, deviations in
                let slot = 2 * c + 1, w = sync.worldSize
                var mine = [Float](repeating: 0, count: slot)
                mine[0] = Float(count)
                for ch in 0..<c { mine[1 + ch] = mean[ch]; mine[1 + c + ch] = deviations[ch] }
                let all = sync.allGatherStatistics(mine)
                let parts = (0..<w).map { r in
                    (count: Int(all[r * slot].rounded()), mean: Array(all[(r * slot + 1)..<(r * slot + 1 + c)]),
                     squaredDeviations: Array(all[(r * slot + 1 + c)..<(r * slot + 1 + 2 * c)]))
                }
                return Self.merge(parts, channels: c)
            },
            sum: { sync.allReduceSum($0) },
            composedBackward: { x, weight, gy, needs in
                var bshape = [Int](repeating: 1, count: x.rank)
                bshape[1] = c
                let dims = [0] + Array(2..<x.rank)
                let (mean, variance, n) = Self.groupStatistics(x, sync)
                let invstd = 1 / (variance + eps).sqrt()
                let xhat = (x - mean) * invstd
                let localG = gy.sum(dims: dims), localGX = (gy * xhat).sum(dims: dims)
                let both = allReduceSumOp(concat([localG, localGX], dim: 0), sync)
                let meanG = both.narrow(0, 0, c).reshape(bshape) * (1 / Float(n))
                let meanGX = both.narrow(0, c, c).reshape(bshape) * (1 / Float(n))
                let dx = needs[0] ? (weight.reshape(bshape) * invstd) * (gy - meanG - xhat * meanGX) : nil
                return [dx, needs[1] ? localGX : nil, needs[2] ? localG : nil]
            })
    }

    /// The group's mean and biased variance of x ([1, C, 1...]) and its values per channel, as
    /// differentiable ops (the slots and merge of `syncGroup`'s statistics).
    private static func groupStatistics(_ x: Tensor, _ sync: BatchNormSynchronizer) -> (Tensor, Tensor, Int) {
        let c = x.shape[1], slot = 2 * c + 1, w = sync.worldSize
        var bshape = [Int](repeating: 1, count: x.rank)
        bshape[1] = c
        let dims = [0] + Array(2..<x.rank)
        let m = x.mean(dims: dims)
        let m2 = (x - m.reshape(bshape)).pow(2).sum(dims: dims)
        var parts: [Tensor] = []
        if sync.rank > 0 { parts.append(Tensor.zeros([sync.rank * slot])) }
        parts += [Tensor(shape: [1], values: [Float(x.count / max(c, 1))]), m, m2]
        if sync.rank < w - 1 { parts.append(Tensor.zeros([(w - 1 - sync.rank) * slot])) }
        let all = allReduceSumOp(concat(parts, dim: 0), sync)
        let counts = (0..<w).map { Int(all[flat: $0 * slot].rounded()) }
        let n = counts.reduce(0, +)
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
        return (gm!.reshape(bshape), (gm2! * (1 / Float(n))).reshape(bshape), n)
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
