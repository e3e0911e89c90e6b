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
/// estimates.
public func batchNormTraining(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> (Tensor, BatchStatistics) {
    precondition(x.rank >= 2, "batch_norm: needs [N, C, ...], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1]
    let s = x.count / max(n * c, 1)
    precondition(weight.shape == [c] && bias.shape == [c], "batch_norm: weight \(weight.shape) and bias \(bias.shape) for \(c) channels")
    let m = n * s
    var mean = [Float](repeating: 0, count: c), variance = [Float](repeating: 0, count: c)
    let y = Tensor(uninitializedShape: x.shape)
    let xp = x.data, yp = y.data, wp = weight.data, bp = bias.data
    mean.withUnsafeMutableBufferPointer { mb in
        variance.withUnsafeMutableBufferPointer { vb in
            ThreadPool.shared.parallelFor(c, grain: max(1, elementGrain / max(m, 1)), align: 1) { channels in
                for ch in channels {
                    var acc: Double = 0
                    for i in 0..<n { acc += sumDouble(xp + (i * c + ch) * s, s) }
                    let mu = Float(acc / Double(max(m, 1)))
                    var sq: Double = 0
                    for i in 0..<n {
                        let row = xp + (i * c + ch) * s
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
                        sq += Double(lane.sum()) + Double(tail)
                    }
                    let v = Float(sq / Double(max(m, 1)))
                    mb[ch] = mu
                    vb[ch] = v
                    let invstd = 1 / (v + eps).squareRoot()
                    let scale = invstd * wp[ch], shift = bp[ch] - mu * scale
                    for i in 0..<n {
                        let src = xp + (i * c + ch) * s, dst = yp + (i * c + ch) * s
                        for j in 0..<s { dst[j] = src[j] * scale + shift }
                    }
                }
            }
        }
    }
    let stats = BatchStatistics(mean: mean, variance: variance, count: m)
    let out = record(y, "batch_norm", [x, weight, bias]) { gy, _, needs in
        if GradMode.isEnabled {
            return batchNormBackwardComposed(x, weight, gy, eps: eps, needs: needs)
        }
        return batchNormBackwardFused(x, weight, gy, mean: mean, variance: variance, eps: eps, needs: needs)
    }
    return (out, stats)
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
        for ch in channels {
            let mu = mean[ch], invstd = 1 / (variance[ch] + eps).squareRoot()
            var sg: Double = 0, sgx: Double = 0
            for i in 0..<n {
                let xr = xp + (i * c + ch) * s, gr = gp + (i * c + ch) * s
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
                sg += Double(a.sum()) + Double(ta)
                sgx += Double(b.sum()) + Double(tb)
            }
            let sumG = Float(sg), sumGXhat = Float(sgx) * invstd
            dbp[ch] = sumG
            dwp[ch] = sumGXhat
            guard let dxp else { continue }
            let k = wp[ch] * invstd
            let meanG = sumG / m, meanGX = sumGXhat / m
            for i in 0..<n {
                let xr = xp + (i * c + ch) * s, gr = gp + (i * c + ch) * s, dr = dxp + (i * c + ch) * s
                for j in 0..<s {
                    let xhat = (xr[j] - mu) * invstd
                    dr[j] = k * (gr[j] - meanG - xhat * meanGX)
                }
            }
        }
    }
    return [dx, needs[1] ? dw : nil, needs[2] ? db : nil]
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
