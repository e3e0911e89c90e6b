import COpenBLAS
import Synchronization

/// C[m,n] = op(A) op(B) for row-major A, B through cblas_sgemm.
func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
           _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
           _ c: UnsafeMutablePointer<Float>, _ ldc: Int, beta: Float = 0, alpha: Float = 1) {
    if m == 0 || n == 0 { return }
    EngineCounters.gemmMultiplyAdds.add(m * n * k, ordering: .relaxed)
    if k == 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    // Split the larger side of C over the engine's threads (each block is one single-threaded
    // OpenBLAS call); small products run whole on the caller.
    let pool = ThreadPool.shared
    if pool.splits > 1 && m * n * k >= sgemmSplitFlops {
        if n >= m {
            pool.parallelFor(n, grain: 64, align: 16) { r in
                sgemmBlock(transA, transB, m, r.count, k, a, lda,
                           transB ? b + r.lowerBound * ldb : b + r.lowerBound, ldb, c + r.lowerBound, ldc, beta, alpha)
            }
        } else {
            pool.parallelFor(m, grain: 16, align: 8) { r in
                sgemmBlock(transA, transB, r.count, n, k, transA ? a + r.lowerBound : a + r.lowerBound * lda, lda,
                           b, ldb, c + r.lowerBound * ldc, ldc, beta, alpha)
            }
        }
        return
    }
    sgemmBlock(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, beta, alpha)
}

/// Work counters of the engine (for benchmarks: the fraction of the sgemm ceiling a run reaches).
public enum EngineCounters {
    /// Multiply-adds done by GEMM calls since the process started (2 flops each).
    public static let gemmMultiplyAdds = Atomic<Int>(0)
    /// GEMM work so far in GFLOP.
    public static var gemmGFLOP: Double { Double(gemmMultiplyAdds.load(ordering: .relaxed)) * 2e-9 }
    /// Weight-gradient products added straight into a leaf's gradient buffer (tests see the
    /// direct path taken through it).
    static let directProducts = Atomic<Int>(0)
}

/// Products of at least this many multiply-adds are split over the engine's threads.
let sgemmSplitFlops = 1 << 18

@inline(__always)
private func sgemmBlock(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ beta: Float, _ alpha: Float) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// c += op(x) op(y) for 2-d operands, with the bits of `c + matmulT(x, y, transA: tx, transB: ty)`:
/// the product is added to c whole, once. Where the loaded GEMM kernel is proved to do that
/// itself for this shape (`gemmAddsProductOnce`), the product goes straight into c with beta = 1
/// (no temporary, no separate add pass); otherwise it is formed apart and added.
private func gemmAccumulate(into c: Tensor, _ x: Tensor, _ tx: Bool, _ y: Tensor, _ ty: Bool) {
    let (m, k) = tx ? (x.shape[1], x.shape[0]) : (x.shape[0], x.shape[1])
    let n = ty ? y.shape[0] : y.shape[1]
    precondition(c.shape == [m, n] && (ty ? y.shape[1] : y.shape[0]) == k,
                 "gemmAccumulate: \(x.shape) @ \(y.shape) does not give \(c.shape)")
    if gemmAddsProductOnce(tx, ty, m, n, k) {
        EngineCounters.directProducts.add(1, ordering: .relaxed)
        sgemm(tx, ty, m, n, k, x.data, x.shape[1], y.data, y.shape[1], c.data, n, beta: 1)
    } else {
        let p = matmulT(x, y, transA: tx, transB: ty)
        let dst = c.data, src = UnsafePointer(p.data)
        for i in 0..<(m * n) { dst[i] += src[i] }
    }
}

private struct GemmShape: Hashable {
    let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, threads: Int
}
private let onePassShapes = Mutex<[GemmShape: Bool]>([:])

/// Whether `sgemm(transA, transB, m, n, k, ..., beta: 1)` gives C + P with the bits of P, the
/// product the same call forms with beta = 0, on the GEMM kernel loaded in this process.
///
/// OpenBLAS forms a product in blocks of GEMM_Q along k and adds each block's sum to C as it
/// goes, so a product deeper than one block is added in parts, ((C + P1) + P2), which rounds
/// differently from C + (P1 + P2). GEMM_Q belongs to the kernel (128 for the generic Prescott
/// kernels, 320-384 for the AVX2 and AVX-512 ones; small-matrix kernels never split k) and
/// cannot be read through OpenBLAS's API, so it is measured: a probe through the same call with
/// C = 2^24 and exactly two unit multiply-adds per element, at positions (0, k - 1) and then
/// (0, 1). Added once, 2^24 + 2 is exact; added in two parts, 2^24 + 1 rounds back to 2^24 (ties
/// to even) each time. Blocks are contiguous ranges of k, so the first and last positions share
/// one only when the whole product is one block; the adjacent pair also catches a kernel that
/// splits k by parity. The answer depends only on the call's shape (and the engine's thread
/// split), so it is cached per shape.
func gemmAddsProductOnce(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int) -> Bool {
    if k < 2 || m == 0 || n == 0 { return true }
    let key = GemmShape(transA: transA, transB: transB, m: m, n: n, k: k, threads: ThreadPool.shared.splits)
    if let known = onePassShapes.withLock({ $0[key] }) { return known }
    let once = probeOnePass(key, positions: (0, k - 1)) && probeOnePass(key, positions: (0, 1))
    onePassShapes.withLock { $0[key] = once }
    return once
}

private func probeOnePass(_ s: GemmShape, positions: (Int, Int)) -> Bool {
    let (m, n, k) = (s.m, s.n, s.k)
    let a = UnsafeMutableBufferPointer<Float>.allocate(capacity: m * k)
    let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: k * n)
    let c = UnsafeMutableBufferPointer<Float>.allocate(capacity: m * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    a.initialize(repeating: 0); b.initialize(repeating: 0); c.initialize(repeating: 16_777_216)
    for p in [positions.0, positions.1] {
        // op(A)[i, p] = 1 for every row i; op(B)[p, j] = 1 for every column j.
        for i in 0..<m { a[s.transA ? p * m + i : i * k + p] = 1 }
        for j in 0..<n { b[s.transB ? j * k + p : p * n + j] = 1 }
    }
    sgemm(s.transA, s.transB, m, n, k, UnsafePointer(a.baseAddress!), s.transA ? m : k,
          UnsafePointer(b.baseAddress!), s.transB ? k : n, c.baseAddress!, n, beta: 1)
    return c.allSatisfy { $0 == 16_777_218 }
}

/// Batched op(A) @ op(B) on the last two dims. A is [b, ., .] or 2-d; B likewise. A 2-d operand is
/// shared by every batch entry. The backward rules are themselves `matmulT` calls, so they are
/// differentiable again.
func matmulT(_ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool) -> Tensor {
    precondition((a.rank == 2 || a.rank == 3) && (b.rank == 2 || b.rank == 3),
                 "matmul: needs 2-d or 3-d operands, got \(a.shape) and \(b.shape)")
    let batchA = a.rank == 3 ? a.shape[0] : 1, batchB = b.rank == 3 ? b.shape[0] : 1
    precondition(batchA == batchB || a.rank == 2 || b.rank == 2,
                 "matmul: batch sizes \(batchA) and \(batchB) differ")
    let batch = max(batchA, batchB)
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transA ? (ac, ar) : (ar, ac)
    let (k2, n) = transB ? (bc, br) : (br, bc)
    precondition(k == k2, "matmul: inner dimensions differ: \(a.shape)\(transA ? "^T" : "") @ \(b.shape)\(transB ? "^T" : "")")
    let outShape = (a.rank == 3 || b.rank == 3) ? [batch, m, n] : [m, n]
    let out = Tensor(uninitializedShape: outShape)
    let strideA = a.rank == 3 ? ar * ac : 0, strideB = b.rank == 3 ? br * bc : 0
    for i in 0..<batch {
        sgemm(transA, transB, m, n, k, a.data + i * strideA, ac, b.data + i * strideB, bc, out.data + i * m * n, n)
    }
    return record(out, .matmul, [a, b]) { g, _, needs in
        var ga: Tensor? = nil, gb: Tensor? = nil
        if needs[0], let sink = a.directGrad, a.rank == 2, b.rank == 2, g.rank == 2 {
            // A is a leaf with a gradient buffer: the same product, added straight into it.
            if transA { gemmAccumulate(into: sink, b, transB, g, true) } else { gemmAccumulate(into: sink, g, false, b, !transB) }
        } else if needs[0] {
            // dA = g op(B)^T, or its transpose when A was transposed.
            var d = transA ? matmulT(b, g, transA: transB, transB: true) : matmulT(g, b, transA: false, transB: !transB)
            if a.rank == 2 && d.rank == 3 { d = d.sum(dim: 0) }
            ga = d
        }
        if needs[1], let sink = b.directGrad, a.rank == 2, b.rank == 2, g.rank == 2 {
            // B is a leaf with a gradient buffer (a Linear's weight): added straight into it.
            if transB { gemmAccumulate(into: sink, g, true, a, transA) } else { gemmAccumulate(into: sink, a, !transA, g, false) }
        } else if needs[1] {
            var d: Tensor
            if a.rank == 3 && b.rank == 2 && !transA {
                // Shared B: fold the batch into rows, one GEMM instead of a batch and a sum.
                let a2 = a.reshape([batch * ar, ac]), g2 = g.reshape([batch * m, n])
                d = transB ? matmulT(g2, a2, transA: true, transB: false) : matmulT(a2, g2, transA: true, transB: false)
            } else {
                // dB = op(A)^T g, or its transpose when B was transposed.
                d = transB ? matmulT(g, a, transA: true, transB: transA) : matmulT(a, g, transA: !transA, transB: false)
                if b.rank == 2 && d.rank == 3 { d = d.sum(dim: 0) }
            }
            gb = d
        }
        return [ga, gb]
    }
}

/// Matrix product with PyTorch's rules for 2-d and batched 3-d operands; a [..., m, k] input times
/// a 2-d [k, n] weight folds its leading dims into rows.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    if a.rank > 3 && b.rank == 2 {
        let lead = Array(a.shape.dropLast())
        let out = matmulT(a.reshape([-1, a.shape[a.rank - 1]]), b, transA: false, transB: false)
        return out.reshape(lead + [b.shape[1]])
    }
    return matmulT(a, b, transA: false, transB: false)
}

/// x W^T + b, as `torch.nn.functional.linear` (x: [N, in], W: [out, in], b: [out]).
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    precondition(x.rank >= 1 && weight.rank == 2 && x.shape[x.rank - 1] == weight.shape[1],
                 "linear: input \(x.shape) does not fit weight \(weight.shape)")
    let x2 = x.rank == 2 ? x : x.reshape([-1, weight.shape[1]])
    var y = matmulT(x2, weight, transA: false, transB: true)
    if let bias { y = y + bias }
    return x.rank == 2 ? y : y.reshape(Array(x.shape.dropLast()) + [weight.shape[0]])
}

public func dot(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.rank == 1 && b.rank == 1 && a.count == b.count, "dot: needs equal 1-d tensors, got \(a.shape), \(b.shape)")
    return matmulT(a.reshape([1, a.count]), b.reshape([b.count, 1]), transA: false, transB: false).reshape([])
}

/// Matrix-vector product W v (W: [m, n], v: [n]).
public func mv(_ w: Tensor, _ v: Tensor) -> Tensor {
    precondition(w.rank == 2 && v.rank == 1 && w.shape[1] == v.count, "mv: \(w.shape) times \(v.shape)")
    return matmulT(w, v.reshape([v.count, 1]), transA: false, transB: false).reshape([w.shape[0]])
}
