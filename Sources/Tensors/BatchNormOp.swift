#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Batch normalisation in training mode as one fused op (PyTorch's `native_batch_norm`): one pass
// for the mean, one for the variance, one for the output, per channel, channels split over the
// engine's threads. Composed from element-wise ops it took eight passes over the activations
// and about a quarter of a DCGAN step.
//
// backward: with gy the output's gradient, M the values per channel, xhat = (x - mean) * invstd:
//   db = sum(gy)    dw = sum(gy * xhat)    dx = w * invstd * (gy - db / M - xhat * dw / M)
// A plain backward runs that as one fused pass; under create-graph (WGAN-GP's penalty through a
// critic with batch norm) the same formula is built from differentiable ops, with mean and
// invstd recomputed from x, so the gradient can be differentiated again.

/// Batch statistics of x [N, C, ...] per channel: mean and biased variance.
public struct BatchStatistics {
    public let mean: [Float]
    public let variance: [Float]
    /// Values per channel (N times the spatial size).
    public let count: Int
}

/// `F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)`: normalises x [N, C, ...]
/// with its own per-channel statistics (biased variance) and returns them too, for the running
/// estimates. With a `group`, the statistics (and the sums its backward needs) are the whole
/// group's: SyncBatchNorm.
public func batchNormTraining(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, group: BatchNormGroup? = nil) -> (Tensor, BatchStatistics) {
    precondition(x.rank >= 2, "batch_norm: needs [N, C, ...], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1]
    let s = x.count / max(n * c, 1)
    precondition(weight.shape == [c] && bias.shape == [c], "batch_norm: weight \(weight.shape) and bias \(bias.shape) for \(c) channels")
    let m = n * s
    if let group { return batchNormTrainingGroup(x, weight: weight, bias: bias, eps: eps, group: group) }
    var mean = [Float](repeating: 0, count: c), variance = [Float](repeating: 0, count: c)
    let y = Tensor(uninitializedShape: x.shape)
    let xp = x.data, yp = y.data, wp = weight.data, bp = bias.data
    mean.withUnsafeMutableBufferPointer { mb in
        variance.withUnsafeMutableBufferPointer { vb in
            ThreadPool.shared.parallelFor(c, grain: max(1, elementGrain / max(m, 1)), align: 1) { channels in
                forEachChannelBlock(channels, n: n, s: s) { b0, b1 in
                    withUnsafeTemporaryAllocation(of: Double.self, capacity: b1 - b0) { acc in
                        blockMoments(xp, n: n, c: c, s: s, b0, b1, mean: mb, deviations: acc)
                        for ch in b0..<b1 { vb[ch] = Float(acc[ch - b0] / Double(max(m, 1))) }
                    }
                    blockNormalise(xp, yp, n: n, c: c, s: s, b0, b1, mean: UnsafePointer(mb.baseAddress!), variance: UnsafePointer(vb.baseAddress!),
                                   eps: eps, weight: wp, bias: bp)
                }
            }
        }
    }
    let stats = BatchStatistics(mean: mean, variance: variance, count: m)
    let out = record(y, .batchNorm, [x, weight, bias]) { gy, _, needs in
        if GradMode.isEnabled {
            return batchNormBackwardComposed(x, weight, gy, eps: eps, needs: needs)
        }
        return batchNormBackwardFused(x, weight, gy, mean: mean, variance: variance, eps: eps, needs: needs)
    }
    return (out, stats)
}

/// SyncBatchNorm's forward: this process's moments per channel, the group's statistics from them
/// (`group.statistics`, one collective), then the same normalising pass. Its backward sums
/// sum(gy) and sum(gy * (x - mean)) over the group (`group.sum`, one collective) before the pass
/// for dx, as PyTorch's SyncBatchNorm does; dw and db stay this process's own (the gradient
/// all-reduce sums them).
private func batchNormTrainingGroup(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, group: BatchNormGroup) -> (Tensor, BatchStatistics) {
    let n = x.shape[0], c = x.shape[1]
    let s = x.count / max(n * c, 1)
    let m = n * s
    let grain = max(1, elementGrain / max(m, 1))
    var local = [Float](repeating: 0, count: c), deviations = [Float](repeating: 0, count: c)
    let xp = x.data
    local.withUnsafeMutableBufferPointer { mb in
        deviations.withUnsafeMutableBufferPointer { db in
            ThreadPool.shared.parallelFor(c, grain: grain, align: 1) { channels in
                forEachChannelBlock(channels, n: n, s: s) { b0, b1 in
                    withUnsafeTemporaryAllocation(of: Double.self, capacity: b1 - b0) { acc in
                        blockMoments(xp, n: n, c: c, s: s, b0, b1, mean: mb, deviations: acc)
                        for ch in b0..<b1 { db[ch] = Float(acc[ch - b0]) }
                    }
                }
            }
        }
    }
    let global = group.statistics(m, local, deviations)
    precondition(global.mean.count == c && global.variance.count == c, "batch_norm: the group's statistics have the wrong length")
    let mean = global.mean, variance = global.variance
    let y = Tensor(uninitializedShape: x.shape)
    let yp = y.data, wp = weight.data, bp = bias.data
    mean.withUnsafeBufferPointer { mb in
        variance.withUnsafeBufferPointer { vb in
            ThreadPool.shared.parallelFor(c, grain: grain, align: 1) { channels in
                forEachChannelBlock(channels, n: n, s: s) { b0, b1 in
                    blockNormalise(xp, yp, n: n, c: c, s: s, b0, b1, mean: mb.baseAddress!, variance: vb.baseAddress!,
                                   eps: eps, weight: wp, bias: bp)
                }
            }
        }
    }
    let total = global.count
    let out = record(y, .batchNorm, [x, weight, bias]) { gy, _, needs in
        if GradMode.isEnabled { return group.composedBackward(x, weight, gy, needs) }
        return batchNormBackwardGroup(x, weight, gy, mean: mean, variance: variance, count: total, eps: eps,
                                      needs: needs, sum: group.sum)
    }
    return (out, BatchStatistics(mean: mean, variance: variance, count: total))
}

/// What turns `batchNormTraining` into SyncBatchNorm: the collectives of a data-parallel group
/// (NN's `BatchNorm` builds one from its synchronizer). Every process calls them in the same
/// order with the same lengths.
public struct BatchNormGroup {
    /// This process's values per channel, per-channel means and sums of squared deviations ->
    /// the group's values per channel, means and biased variances.
    public var statistics: (_ count: Int, _ mean: [Float], _ squaredDeviations: [Float]) -> (count: Int, mean: [Float], variance: [Float])
    /// The element-wise sum of a vector over the group.
    public var sum: ([Float]) -> [Float]
    /// The backward from differentiable ops, for create-graph (gradients of gradients): the
    /// gradients of x, weight and bias given gy, as `needs` asks.
    public var composedBackward: (_ x: Tensor, _ weight: Tensor, _ gy: Tensor, _ needs: [Bool]) -> [Tensor?]

    public init(statistics: @escaping (Int, [Float], [Float]) -> (count: Int, mean: [Float], variance: [Float]),
                sum: @escaping ([Float]) -> [Float],
                composedBackward: @escaping (Tensor, Tensor, Tensor, [Bool]) -> [Tensor?]) {
        self.statistics = statistics
        self.sum = sum
        self.composedBackward = composedBackward
    }
}

/// Mean (into `mean`) and sum of squared deviations (into `deviations[0..<b1 - b0]`) of the
/// channels b0..<b1, image by image, accumulated in double.
@inline(__always)
private func blockMoments(_ xp: UnsafeMutablePointer<Float>, n: Int, c: Int, s: Int, _ b0: Int, _ b1: Int,
                          mean mb: UnsafeMutableBufferPointer<Float>, deviations acc: UnsafeMutableBufferPointer<Double>) {
    let m = n * s
    acc.initialize(repeating: 0)
    for i in 0..<n {
        for ch in b0..<b1 { acc[ch - b0] += rowSum(xp + (i * c + ch) * s, s) }
    }
    for ch in b0..<b1 { mb[ch] = Float(acc[ch - b0] / Double(max(m, 1))) }
    acc.initialize(repeating: 0)
    for i in 0..<n {
        for ch in b0..<b1 { acc[ch - b0] += rowSquaredDeviation(xp + (i * c + ch) * s, s, mb[ch]) }
    }
}

/// y = (x - mean) * invstd * w + b for the channels b0..<b1, as one scale and shift per channel.
@inline(__always)
private func blockNormalise(_ xp: UnsafeMutablePointer<Float>, _ yp: UnsafeMutablePointer<Float>, n: Int, c: Int, s: Int, _ b0: Int, _ b1: Int,
                            mean mb: UnsafePointer<Float>, variance vb: UnsafePointer<Float>, eps: Float,
                            weight wp: UnsafeMutablePointer<Float>, bias bp: UnsafeMutablePointer<Float>) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * (b1 - b0)) { ss in
        for ch in b0..<b1 {
            let invstd = 1 / (vb[ch] + eps).squareRoot()
            let scale = invstd * wp[ch]
            ss[2 * (ch - b0)] = scale
            ss[2 * (ch - b0) + 1] = bp[ch] - mb[ch] * scale
        }
        for i in 0..<n {
            for ch in b0..<b1 {
                let scale = ss[2 * (ch - b0)], shift = ss[2 * (ch - b0) + 1]
                let src = xp + (i * c + ch) * s, dst = yp + (i * c + ch) * s
                for j in 0..<s { dst[j] = src[j] * scale + shift }
            }
        }
    }
}

/// The backward as one fused pass per channel (no graph).
private func batchNormBackwardFused(_ x: Tensor, _ weight: Tensor, _ gy: Tensor, mean: [Float], variance: [Float],
                                    eps: Float, needs: [Bool]) -> [Tensor?] {
    let n = x.shape[0], c = x.shape[1]
    let s = x.count / max(n * c, 1)
    let m = Float(n * s)
    let dx = needs[0] ? Tensor(uninitializedShape: x.shape) : nil
    let dw = Tensor(uninitializedShape: [c]), db = Tensor(uninitializedShape: [c])
    let xp = x.data, gp = gy.data, wp = weight.data, dxp = dx?.data
    let dwp = dw.data, dbp = db.data
    ThreadPool.shared.parallelFor(c, grain: max(1, elementGrain / max(n * s, 1)), align: 1) { channels in
        forEachChannelBlock(channels, n: n, s: s) { b0, b1 in
            // Per channel: invstd, w * invstd, mean of g, mean of g * xhat (for dx).
            withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: b1 - b0) { coef in
                withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * (b1 - b0)) { acc in
                    blockGradientSums(gp, xp, n: n, c: c, s: s, b0, b1, mean: mean, into: acc)
                    for ch in b0..<b1 {
                        let invstd = 1 / (variance[ch] + eps).squareRoot()
                        dbp[ch] = Float(acc[2 * (ch - b0)])
                        dwp[ch] = Float(acc[2 * (ch - b0) + 1]) * invstd
                        coef[ch - b0] = SIMD4(invstd, wp[ch] * invstd, dbp[ch] / m, dwp[ch] / m)
                    }
                }
                guard let dxp else { return }
                blockInputGradient(gp, xp, dxp, n: n, c: c, s: s, b0, b1, mean: mean, coefficients: coef)
            }
        }
    }
    return [dx, needs[1] ? dw : nil, needs[2] ? db : nil]
}

/// SyncBatchNorm's backward (no graph): this process's sum(gy) and sum(gy * (x - mean)) per
/// channel, summed over the group (`sum`), give dx with the group's `count` values per channel;
/// dw and db are this process's sums.
private func batchNormBackwardGroup(_ x: Tensor, _ weight: Tensor, _ gy: Tensor, mean: [Float], variance: [Float], count: Int,
                                    eps: Float, needs: [Bool], sum: ([Float]) -> [Float]) -> [Tensor?] {
    let n = x.shape[0], c = x.shape[1]
    let s = x.count / max(n * c, 1)
    let grain = max(1, elementGrain / max(n * s, 1))
    let dw = Tensor(uninitializedShape: [c]), db = Tensor(uninitializedShape: [c])
    let xp = x.data, gp = gy.data, wp = weight.data, dwp = dw.data, dbp = db.data
    // [sum(gy) per channel | sum(gy * (x - mean)) per channel], this process's.
    var sums = [Float](repeating: 0, count: 2 * c)
    sums.withUnsafeMutableBufferPointer { sb in
        ThreadPool.shared.parallelFor(c, grain: grain, align: 1) { channels in
            forEachChannelBlock(channels, n: n, s: s) { b0, b1 in
                withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * (b1 - b0)) { acc in
                    blockGradientSums(gp, xp, n: n, c: c, s: s, b0, b1, mean: mean, into: acc)
                    for ch in b0..<b1 {
                        sb[ch] = Float(acc[2 * (ch - b0)])
                        sb[c + ch] = Float(acc[2 * (ch - b0) + 1])
                    }
                }
            }
        }
    }
    let total = sum(sums)
    precondition(total.count == 2 * c, "batch_norm: the group's gradient sums have the wrong length")
    let m = Float(count)
    var coef = [SIMD4<Float>](repeating: .zero, count: c)
    for ch in 0..<c {
        let invstd = 1 / (variance[ch] + eps).squareRoot()
        dbp[ch] = sums[ch]
        dwp[ch] = sums[c + ch] * invstd
        coef[ch] = SIMD4(invstd, wp[ch] * invstd, total[ch] / m, total[c + ch] * invstd / m)
    }
    guard needs[0] else { return [nil, needs[1] ? dw : nil, needs[2] ? db : nil] }
    let dx = Tensor(uninitializedShape: x.shape)
    let dxp = dx.data
    coef.withUnsafeMutableBufferPointer { cb in
        ThreadPool.shared.parallelFor(c, grain: grain, align: 1) { channels in
            forEachChannelBlock(channels, n: n, s: s) { b0, b1 in
                blockInputGradient(gp, xp, dxp, n: n, c: c, s: s, b0, b1, mean: mean,
                                   coefficients: UnsafeMutableBufferPointer(rebasing: cb[b0..<b1]))
            }
        }
    }
    return [dx, needs[1] ? dw : nil, needs[2] ? db : nil]
}

/// sum(gy) and sum(gy * (x - mean)) of the channels b0..<b1, image by image, in double:
/// acc[2 k] and acc[2 k + 1] for channel b0 + k.
@inline(__always)
private func blockGradientSums(_ gp: UnsafeMutablePointer<Float>, _ xp: UnsafeMutablePointer<Float>, n: Int, c: Int, s: Int,
                               _ b0: Int, _ b1: Int, mean: [Float], into acc: UnsafeMutableBufferPointer<Double>) {
    acc.initialize(repeating: 0)
    for i in 0..<n {
        for ch in b0..<b1 {
            let (a, b) = rowGradientSums(gp + (i * c + ch) * s, xp + (i * c + ch) * s, s, mean[ch])
            acc[2 * (ch - b0)] += a
            acc[2 * (ch - b0) + 1] += b
        }
    }
}

/// dx = w * invstd * (gy - mean(g) - xhat * mean(g * xhat)) for the channels b0..<b1, from
/// the coefficients (invstd, w * invstd, mean(g), mean(g * xhat)) of channel b0 + k at k.
@inline(__always)
private func blockInputGradient(_ gp: UnsafeMutablePointer<Float>, _ xp: UnsafeMutablePointer<Float>, _ dxp: UnsafeMutablePointer<Float>,
                                n: Int, c: Int, s: Int, _ b0: Int, _ b1: Int, mean: [Float],
                                coefficients coef: UnsafeMutableBufferPointer<SIMD4<Float>>) {
    for i in 0..<n {
        for ch in b0..<b1 {
            let mu = mean[ch], q = coef[ch - b0]
            let invstd = q[0], k = q[1], meanG = q[2], meanGX = q[3]
            let xr = xp + (i * c + ch) * s, gr = gp + (i * c + ch) * s, dr = dxp + (i * c + ch) * s
            for j in 0..<s {
                let xhat = (xr[j] - mu) * invstd
                dr[j] = k * (gr[j] - meanG - xhat * meanGX)
            }
        }
    }
}

// MARK: channel blocks
//
// Every pass walks a block of channels image by image ([i, block, :] is contiguous), with one
// accumulator per channel. Walking one channel at a time instead strides by C * S floats from
// image to image: for [N, C] activations (S = 1, the MLP's BatchNorm1d) and small maps (S = 16 at
// C = 512) that stride is a multiple of 4 KB, every load of a channel falls into the same L1
// set, and the passes ran from L2 (bench/RESULTS.md has the profile). The sums per channel are
// taken in the same order as before (image 0, 1, ...), so the results are bit for bit the same.

/// Calls `body(b0, b1)` for consecutive blocks of `channels` whose values (n * s floats each)
/// fill about 256 KB (one channel per block when a channel alone is larger).
@inline(__always)
private func forEachChannelBlock(_ channels: Range<Int>, n: Int, s: Int, _ body: (Int, Int) -> Void) {
    let block = max(1, min(1024, (1 << 16) / max(n * s, 1)))
    var b0 = channels.lowerBound
    while b0 < channels.upperBound {
        let b1 = min(channels.upperBound, b0 + block)
        body(b0, b1)
        b0 = b1
    }
}

/// Sum of one row of s values in double precision (`sumDouble`; one value converted exactly).
@inline(__always)
private func rowSum(_ row: UnsafePointer<Float>, _ s: Int) -> Double {
    s == 1 ? Double(row[0]) : sumDouble(row, s)
}

/// Sum of (x - mu)^2 over one row: float lanes of 8 and a float tail, added in double.
@inline(__always)
private func rowSquaredDeviation(_ row: UnsafePointer<Float>, _ s: Int, _ mu: Float) -> Double {
    if s == 1 { let d = row[0] - mu; return Double(d * d) }
    var lane = SIMD8<Float>()
    var j = 0
    let vm = SIMD8<Float>(repeating: mu)
    while j + 8 <= s {
        let d = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) - vm
        lane += d * d
        j += 8
    }
    var tail: Float = 0
    while j < s { let d = row[j] - mu; tail += d * d; j += 1 }
    return Double(lane.sum()) + Double(tail)
}

/// sum(gy) and sum(gy * (x - mu)) over one row, in the same float lanes and tail.
@inline(__always)
private func rowGradientSums(_ gr: UnsafePointer<Float>, _ xr: UnsafePointer<Float>, _ s: Int, _ mu: Float) -> (Double, Double) {
    if s == 1 { return (Double(gr[0]) + 0, Double(gr[0] * (xr[0] - mu)) + 0) }
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    var j = 0
    let vm = SIMD8<Float>(repeating: mu)
    while j + 8 <= s {
        let g8 = UnsafeRawPointer(gr + j).loadUnaligned(as: SIMD8<Float>.self)
        let x8 = UnsafeRawPointer(xr + j).loadUnaligned(as: SIMD8<Float>.self)
        a += g8
        b += g8 * (x8 - vm)
        j += 8
    }
    var ta: Float = 0, tb: Float = 0
    while j < s { ta += gr[j]; tb += gr[j] * (xr[j] - mu); j += 1 }
    return (Double(a.sum()) + Double(ta), Double(b.sum()) + Double(tb))
}

/// The same backward built from differentiable ops (create-graph).
private func batchNormBackwardComposed(_ x: Tensor, _ weight: Tensor, _ gy: Tensor, eps: Float, needs: [Bool]) -> [Tensor?] {
    let c = x.shape[1]
    var bshape = [Int](repeating: 1, count: x.rank)
    bshape[1] = c
    let dims = [0] + Array(2..<x.rank)
    let m = Float(x.count / max(c, 1))
    let mean = x.mean(dims: dims, keepDim: true)
    let xc = x - mean
    let invstd = 1 / ((xc * xc).mean(dims: dims, keepDim: true) + eps).sqrt()
    let xhat = xc * invstd
    let sumG = gy.sum(dims: dims, keepDim: true)
    let sumGXhat = (gy * xhat).sum(dims: dims, keepDim: true)
    let dx = needs[0] ? (weight.reshape(bshape) * invstd) * (gy - sumG * (1 / m) - xhat * (sumGXhat * (1 / m))) : nil
    return [dx, needs[1] ? sumGXhat.reshape([c]) : nil, needs[2] ? sumG.reshape([c]) : nil]
}
