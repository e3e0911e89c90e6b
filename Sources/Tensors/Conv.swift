// 2-d convolution and transposed convolution as im2col/col2im + one SGEMM per batch chunk.
//
// Three ops close under differentiation, so a critic built from convolutions has an exact
// second derivative (WGAN-GP):
//   conv(x, W)            -> y      backward: dx = convT(g, W),          dW = convWGrad(x, g)
//   convT(y, W)           -> x      backward: dy = conv(g, W),           dW = convWGrad(g, y)
//   convWGrad(x, y)       -> W      backward: dx = convT(y, gW),         dy = conv(x, gW)

import CKernels

/// The sizes of one convolution, in its forward (conv2d) orientation: x [n, cin, h, w] and
/// W [cout, cin, kh, kw] give y [n, cout, ho, wo].
struct ConvGeometry: Equatable {
    var n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, ho, wo: Int
    var k: Int { cin * kh * kw }           // rows of the column matrix
    var p: Int { ho * wo }                  // output positions per image
    var xShape: [Int] { [n, cin, h, w] }
    var yShape: [Int] { [n, cout, ho, wo] }
    var wShape: [Int] { [cout, cin, kh, kw] }

    /// The kernel covers the whole unpadded input and gives one output position: the conv is a
    /// fully connected layer (DCGAN's last D layer, and the first G layer transposed), one GEMM
    /// on the images as they are, with no column matrix.
    var isFullyConnected: Bool { ho == 1 && wo == 1 && ph == 0 && pw == 0 && kh == h && kw == w }

    /// Images per GEMM: enough for 512 GEMM columns, else as many as keep the column buffer
    /// near 1 MB (cache-resident; measured best of 16 MB, 4 MB, 1 MB budgets with bench/).
    var chunk: Int { max(1, min(n, max((512 + p - 1) / max(p, 1), (1 << 18) / max(k * p, 1)))) }
}

// MARK: kernels

/// The geometry as the C kernels take it.
extension ConvGeometry {
    var c: rg_conv_geometry {
        rg_conv_geometry(cin: cin, h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw, ho: ho, wo: wo)
    }
}

/// Columns of images n0..<n0+nc of x into the scratch's cols [k, nc * p] (C: `rg_im2col`, each
/// column row written whole, from padded phase-split planes of one channel at a time).
@inline(__always)
private func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ n0: Int, _ nc: Int, _ s: ChunkScratch) {
    var cg = g.c
    rg_im2col(x, &cg, n0, nc, s.cols.pointer, s.planes.pointer)
}

/// Adds the scratch's cols [k, nc * p] back into images n0..<n0+nc of dx (which the caller zeroed).
@inline(__always)
private func col2im(_ g: ConvGeometry, _ n0: Int, _ nc: Int, _ s: ChunkScratch, _ dx: UnsafeMutablePointer<Float>) {
    var cg = g.c
    rg_col2im(s.cols.pointer, &cg, n0, nc, dx, s.planes.pointer)
}

/// [nc, cout, p] images n0.. of y  <->  [cout, nc * p] matrix.
private func gatherRows(_ y: UnsafePointer<Float>, _ g: ConvGeometry, _ n0: Int, _ nc: Int, _ out: UnsafeMutablePointer<Float>) {
    for s in 0..<nc {
        for co in 0..<g.cout {
            (out + co * nc * g.p + s * g.p).update(from: y + ((n0 + s) * g.cout + co) * g.p, count: g.p)
        }
    }
}

private func scatterRows(_ m: UnsafePointer<Float>, _ g: ConvGeometry, _ n0: Int, _ nc: Int, _ y: UnsafeMutablePointer<Float>) {
    for s in 0..<nc {
        for co in 0..<g.cout {
            (y + ((n0 + s) * g.cout + co) * g.p).update(from: m + co * nc * g.p + s * g.p, count: g.p)
        }
    }
}

/// Splits the batch into chunks of at most `g.chunk` images and spreads them over the engine's
/// threads: `body(part, n0, m)` runs for every chunk, each part (0..<parts) on one thread with
/// its chunks in order, so per-part scratch needs no locking. Returns the number of parts. With
/// one part the GEMMs inside split themselves over the threads instead.
private func forEachChunk(_ g: ConvGeometry, _ body: (_ part: Int, _ n0: Int, _ m: Int) -> Void) -> Int {
    let threads = engineSplits
    var nc = g.chunk
    if threads > 1 && g.n >= threads && (g.n + nc - 1) / nc < threads { nc = (g.n + threads - 1) / threads }
    let chunks = (g.n + nc - 1) / nc
    let parts = min(threads, chunks)
    if parts <= 1 {
        var n0 = 0
        while n0 < g.n { body(0, n0, min(nc, g.n - n0)); n0 += nc }
        return 1
    }
    ThreadPool.shared.run(parts: parts) { part in
        // Contiguous runs of chunks per part.
        let lo = chunks * part / parts, hi = chunks * (part + 1) / parts
        for c in lo..<hi {
            let n0 = c * nc
            body(part, n0, min(nc, g.n - n0))
        }
    }
    return parts
}

/// Per-part scratch buffers for the chunk loops (allocated once per call, reused by every chunk
/// of that part).
private final class ChunkScratch {
    let cols: TensorStorage
    let tmp: TensorStorage?
    /// im2col's and col2im's planes of one channel for nc images.
    let planes: TensorStorage
    init(_ g: ConvGeometry, _ nc: Int) {
        cols = TensorStorage(count: g.k * nc * g.p)
        tmp = nc > 1 ? TensorStorage(count: g.cout * nc * g.p) : nil
        var cg = g.c
        planes = TensorStorage(count: rg_conv_plane_floats(&cg, nc))
    }
}

/// Images n0..<n0+m of y [n, cout, p] as a [cout, m * p] matrix: y itself for one image, else
/// gathered into the scratch.
@inline(__always)
private func chunkRows(_ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ n0: Int, _ m: Int, _ s: ChunkScratch) -> UnsafePointer<Float> {
    if m == 1 { return UnsafePointer(y + n0 * g.cout * g.p) }
    gatherRows(y, g, n0, m, s.tmp!.pointer)
    return UnsafePointer(s.tmp!.pointer)
}

private func convForwardKernel(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
    let y = Tensor(uninitializedShape: g.yShape)
    if g.isFullyConnected {   // y[n, co] = sum_k x[n, k] W[co, k]
        sgemm(false, true, g.n, g.cout, g.k, x.data, g.k, w.data, g.k, y.data, g.cout)
        return y
    }
    let xp = x.data, wp = w.data, yp = y.data
    var scratch: [ChunkScratch?] = Array(repeating: nil, count: engineSplits)
    scratch.withUnsafeMutableBufferPointer { sc in
        _ = forEachChunk(g) { part, n0, m in
            if sc[part] == nil { sc[part] = ChunkScratch(g, g.chunk) }
            let s = sc[part]!
            im2col(xp, g, n0, m, s)
            if m == 1 {
                sgemm(false, false, g.cout, g.p, g.k, wp, g.k, s.cols.pointer, g.p, yp + n0 * g.cout * g.p, g.p)
            } else {
                sgemm(false, false, g.cout, m * g.p, g.k, wp, g.k, s.cols.pointer, m * g.p, s.tmp!.pointer, m * g.p)
                scatterRows(s.tmp!.pointer, g, n0, m, yp)
            }
        }
    }
    return y
}

private func convInputGradKernel(_ gy: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
    if g.isFullyConnected {   // dx[n, k] = sum_co g[n, co] W[co, k]
        let dx = Tensor(uninitializedShape: g.xShape)
        sgemm(false, false, g.n, g.k, g.cout, gy.data, g.cout, w.data, g.k, dx.data, g.k)
        return dx
    }
    let dx = Tensor(uninitializedShape: g.xShape)
    let gp = gy.data, wp = w.data, dxp = dx.data
    var scratch: [ChunkScratch?] = Array(repeating: nil, count: engineSplits)
    scratch.withUnsafeMutableBufferPointer { sc in
        _ = forEachChunk(g) { part, n0, m in
            if sc[part] == nil { sc[part] = ChunkScratch(g, g.chunk) }
            let s = sc[part]!
            let gm = chunkRows(gp, g, n0, m, s)
            sgemm(true, false, g.k, m * g.p, g.cout, wp, g.k, gm, m * g.p, s.cols.pointer, m * g.p)
            // This chunk's images of dx: zeroed here (by the thread that fills them), then summed into.
            (dxp + n0 * g.cin * g.h * g.w).update(repeating: 0, count: m * g.cin * g.h * g.w)
            col2im(g, n0, m, s, dxp)
        }
    }
    return dx
}

/// dW for `x` and the output gradient `gy`: a new tensor, or, with `into`, added into that
/// existing buffer (a leaf's gradient; see `Tensor.directGrad`).
private func convWeightGradKernel(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry, into: Tensor? = nil) -> Tensor {
    let dw = into ?? Tensor(uninitializedShape: g.wShape)
    precondition(dw.shape == g.wShape, "conv weight gradient: buffer of shape \(dw.shape) for weights \(g.wShape)")
    let accumulate = into != nil
    if g.isFullyConnected {   // dW[co, k] = sum_n g[n, co] x[n, k]
        sgemm(true, false, g.cout, g.k, g.n, gy.data, g.cout, x.data, g.k, dw.data, g.k, beta: accumulate ? 1 : 0)
        return dw
    }
    if g.n == 0 { if !accumulate { dw.buffer.update(repeating: 0) }; return dw }
    let xp = x.data, gp = gy.data
    let wCount = g.cout * g.k
    var scratch: [ChunkScratch?] = Array(repeating: nil, count: engineSplits)
    // Part 0 sums into dw, every other part into its own partial, added at the end.
    var partials: [TensorStorage?] = Array(repeating: nil, count: engineSplits)
    var started = [Bool](repeating: false, count: engineSplits)
    let dwp = dw.data
    let parts = scratch.withUnsafeMutableBufferPointer { sc in
        partials.withUnsafeMutableBufferPointer { pa in
            started.withUnsafeMutableBufferPointer { st in
                forEachChunk(g) { part, n0, m in
                    if sc[part] == nil { sc[part] = ChunkScratch(g, g.chunk) }
                    let s = sc[part]!
                    let out: UnsafeMutablePointer<Float>
                    if part == 0 { out = dwp } else {
                        if pa[part] == nil { pa[part] = TensorStorage(count: wCount) }
                        out = pa[part]!.pointer
                    }
                    im2col(xp, g, n0, m, s)
                    let gm = chunkRows(gp, g, n0, m, s)
                    sgemm(false, true, g.cout, g.k, m * g.p, gm, m * g.p, s.cols.pointer, m * g.p, out, g.k,
                          beta: st[part] || (part == 0 && accumulate) ? 1 : 0)
                    st[part] = true
                }
            }
        }
    }
    for part in 1..<max(parts, 1) {
        guard let p = partials[part] else { continue }
        let src = p.pointer
        parallelFor(wCount, grain: 1 << 15) { r in
            for i in r { dwp[i] += src[i] }
        }
    }
    return dw
}

// MARK: the three differentiable ops

func convOp(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
    let y = convForwardKernel(x, w, g)
    return record(y, .conv2d, [x, w]) { gy, _, needs in
        [needs[0] ? convTOp(gy, w, g) : nil, needs[1] ? weightGrad(x, gy, w, g) : nil]
    }
}

func convTOp(_ y: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
    let x = convInputGradKernel(y, w, g)
    return record(x, .convTranspose2d, [y, w]) { gx, _, needs in
        [needs[0] ? convOp(gx, w, g) : nil, needs[1] ? weightGrad(gx, y, w, g) : nil]
    }
}

/// The weight gradient inside a backward rule: added straight into the weight's gradient buffer
/// when backward offers one (nil returned: nothing left to accumulate), else a recorded op.
private func weightGrad(_ x: Tensor, _ y: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor? {
    if let sink = w.directGrad {
        _ = convWeightGradKernel(x, y, g, into: sink)
        return nil
    }
    return convWGradOp(x, y, g)
}

func convWGradOp(_ x: Tensor, _ y: Tensor, _ g: ConvGeometry) -> Tensor {
    let dw = convWeightGradKernel(x, y, g)
    return record(dw, .conv2dWeightGrad, [x, y]) { gw, _, needs in
        [needs[0] ? convTOp(y, gw, g) : nil, needs[1] ? convOp(x, gw, g) : nil]
    }
}

// MARK: public functions (PyTorch semantics)

/// `torch.nn.functional.conv2d`: x [N, Cin, H, W], weight [Cout, Cin, kH, kW], bias [Cout].
public func conv2d(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "conv2d: needs 4-d input and weight, got \(x.shape) and \(weight.shape)")
    precondition(x.shape[1] == weight.shape[1],
                 "conv2d: input has \(x.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[1])")
    precondition(stride > 0 && padding >= 0, "conv2d: stride must be positive and padding non-negative")
    let (h, w, kh, kw) = (x.shape[2], x.shape[3], weight.shape[2], weight.shape[3])
    let ho = (h + 2 * padding - kh) / stride + 1, wo = (w + 2 * padding - kw) / stride + 1
    precondition(h + 2 * padding >= kh && w + 2 * padding >= kw,
                 "conv2d: kernel \(kh)x\(kw) larger than padded input \(h + 2 * padding)x\(w + 2 * padding)")
    let g = ConvGeometry(n: x.shape[0], cin: x.shape[1], h: h, w: w, cout: weight.shape[0], kh: kh, kw: kw,
                         sh: stride, sw: stride, ph: padding, pw: padding, ho: ho, wo: wo)
    let y = convOp(x, weight, g)
    guard let bias else { return y }
    precondition(bias.shape == [weight.shape[0]], "conv2d: bias \(bias.shape) for \(weight.shape[0]) output channels")
    return y + bias.reshape([1, weight.shape[0], 1, 1])
}

/// `torch.nn.functional.conv_transpose2d`: x [N, Cin, H, W], weight [Cin, Cout, kH, kW],
/// output (H - 1) * stride - 2 * padding + kH + outputPadding.
public func convTranspose2d(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                            outputPadding: Int = 0) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "conv_transpose2d: needs 4-d input and weight, got \(x.shape) and \(weight.shape)")
    precondition(x.shape[1] == weight.shape[0],
                 "conv_transpose2d: input has \(x.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[0])")
    precondition(stride > 0 && padding >= 0 && outputPadding >= 0 && outputPadding < stride,
                 "conv_transpose2d: needs stride > 0, padding >= 0 and 0 <= outputPadding < stride")
    let (kh, kw) = (weight.shape[2], weight.shape[3])
    let ho = (x.shape[2] - 1) * stride - 2 * padding + kh + outputPadding
    let wo = (x.shape[3] - 1) * stride - 2 * padding + kw + outputPadding
    precondition(ho > 0 && wo > 0, "conv_transpose2d: output size \(ho)x\(wo) is not positive")
    // In conv orientation the transposed conv's output is the conv's input.
    let g = ConvGeometry(n: x.shape[0], cin: weight.shape[1], h: ho, w: wo, cout: weight.shape[0], kh: kh, kw: kw,
                         sh: stride, sw: stride, ph: padding, pw: padding, ho: x.shape[2], wo: x.shape[3])
    let y = convTOp(x, weight, g)
    guard let bias else { return y }
    precondition(bias.shape == [weight.shape[1]], "conv_transpose2d: bias \(bias.shape) for \(weight.shape[1]) output channels")
    return y + bias.reshape([1, weight.shape[1], 1, 1])
}
