// Raw loops behind the ops: no graph, no allocation per element. Loops over more than
// `elementGrain` values are split over the engine's threads (ThreadPool.swift).

/// Element-wise loops shorter than this run on the calling thread: handing work to another
/// thread costs a few microseconds, about what one core needs for this many values.
let elementGrain = 1 << 15

// An element-wise function as a type (`UnaryMap`, `BinaryMap`): the loop below is specialised
// for it and calls it directly, inlined and vectorised. A closure value handed into a parallel
// loop is called indirectly, once per element, never inlined (bench/RESULTS.md has what that
// cost); the closure forms remain for the ops that are not hot.

protocol UnaryMap { func callAsFunction(_ x: Float) -> Float }
protocol BinaryMap { func callAsFunction(_ a: Float, _ b: Float) -> Float }

private struct UnaryClosure: UnaryMap {
    let f: (Float) -> Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { f(x) }
}

private struct BinaryClosure: BinaryMap {
    let f: (Float, Float) -> Float
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { f(a, b) }
}

/// out[i] = f(x[i])
@inline(__always)
func mapUnary(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    withoutActuallyEscaping(f) { mapUnary(x, UnaryClosure(f: $0)) }
}

/// out[i] = f(x[i]), specialised for `F`.
@inline(__always)
func mapUnary<F: UnaryMap>(_ x: Tensor, _ f: F) -> Tensor {
    let out = Tensor(uninitializedShape: x.shape)
    let src = x.data, dst = out.data
    parallelFor(x.count, grain: elementGrain) { r in
        for i in r { dst[i] = f(src[i]) }
    }
    return out
}

/// x[i] = f(x[i]), over x's own values (in-place activations).
@inline(__always)
func mapUnaryInPlace<F: UnaryMap>(_ x: Tensor, _ f: F) {
    let p = x.data
    parallelFor(x.count, grain: elementGrain) { r in
        for i in r { p[i] = f(p[i]) }
    }
}

/// out = f(a, b) with broadcasting.
@inline(__always)
func mapBinary(_ a: Tensor, _ b: Tensor, _ opName: String, _ f: (Float, Float) -> Float) -> Tensor {
    withoutActuallyEscaping(f) { mapBinary(a, b, opName, BinaryClosure(f: $0)) }
}

/// out = f(a, b) with broadcasting, specialised for `F`.
@inline(__always)
func mapBinary<F: BinaryMap>(_ a: Tensor, _ b: Tensor, _ opName: String, _ f: F) -> Tensor {
    if a.shape == b.shape {
        let out = Tensor(uninitializedShape: a.shape)
        let pa = a.data, pb = b.data, po = out.data
        parallelFor(a.count, grain: elementGrain) { r in
            for i in r { po[i] = f(pa[i], pb[i]) }
        }
        return out
    }
    guard let shape = Broadcast.shape(a.shape, b.shape) else {
        preconditionFailure("\(opName): shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let out = Tensor(uninitializedShape: shape)
    let pa = a.data, pb = b.data, po = out.data
    if b.count == 1 && shape == a.shape {
        let s = pb[0]
        parallelFor(a.count, grain: elementGrain) { r in
            for i in r { po[i] = f(pa[i], s) }
        }
        return out
    }
    if a.count == 1 && shape == b.shape {
        let s = pa[0]
        parallelFor(b.count, grain: elementGrain) { r in
            for i in r { po[i] = f(s, pb[i]) }
        }
        return out
    }
    let sa = Broadcast.strides(of: a.shape, in: shape)
    let sb = Broadcast.strides(of: b.shape, in: shape)
    let last = shape.count - 1
    let ia = sa[last], ib = sb[last]
    let inner = shape[last]
    let rows = out.count / max(inner, 1)
    parallelFor(rows, grain: max(1, elementGrain / max(inner, 1)), align: 1) { rowRange in
        var o = rowRange.lowerBound * inner
        forEachRow(shape, [sa, sb], rows: rowRange) { off, inner in
            var xa = off[0], xb = off[1]
            if ia == 1 && ib == 1 {
                for j in 0..<inner { po[o + j] = f(pa[xa + j], pb[xb + j]) }
            } else if ia == 1 && ib == 0 {
                let s = pb[xb]
                for j in 0..<inner { po[o + j] = f(pa[xa + j], s) }
            } else if ia == 0 && ib == 1 {
                let s = pa[xa]
                for j in 0..<inner { po[o + j] = f(s, pb[xb + j]) }
            } else {
                for j in 0..<inner {
                    po[o + j] = f(pa[xa], pb[xb])
                    xa += ia; xb += ib
                }
            }
            o += inner
        }
    }
    return out
}

/// Copies `x` broadcast to `shape`.
func broadcastCopy(_ x: Tensor, to shape: [Int]) -> Tensor {
    precondition(Broadcast.shape(x.shape, shape) == shape, "expand: \(x.shape) cannot broadcast to \(shape)")
    let out = Tensor(uninitializedShape: shape)
    let px = x.data, po = out.data
    if x.count == 1 {
        let v = px[0]
        parallelFor(out.count, grain: elementGrain) { r in (po + r.lowerBound).update(repeating: v, count: r.count) }
        return out
    }
    let sx = Broadcast.strides(of: x.shape, in: shape)
    let ix = sx[shape.count - 1]
    let inner = shape[shape.count - 1]
    let rows = out.count / max(inner, 1)
    parallelFor(rows, grain: max(1, elementGrain / max(inner, 1)), align: 1) { rowRange in
        var o = rowRange.lowerBound * inner
        forEachRow(shape, [sx], rows: rowRange) { off, inner in
            var xi = off[0]
            if ix == 0 {
                (po + o).update(repeating: px[xi], count: inner)
            } else {
                for j in 0..<inner { po[o + j] = px[xi]; xi += ix }
            }
            o += inner
        }
    }
    return out
}

/// Sums `x` down to `shape` (which broadcasts to x's shape): the adjoint of `broadcastCopy`.
/// In parallel, each thread sums a contiguous run of x's rows into its own partial result (the
/// first into the output), and the partials are added in thread order, so the result does not
/// depend on timing.
func reduceSum(_ x: Tensor, to shape: [Int]) -> Tensor {
    precondition(Broadcast.shape(shape, x.shape) == x.shape, "sumTo: \(x.shape) cannot be summed to \(shape)")
    let out = Tensor.zeros(shape)
    let px = x.data, po = out.data
    if out.count == 1 {
        let parts = min(engineSplits, max(1, x.count / elementGrain))
        var partial = [Double](repeating: 0, count: parts)
        partial.withUnsafeMutableBufferPointer { acc in
            ThreadPool.shared.run(parts: parts) { p in
                let lo = x.count * p / parts, hi = x.count * (p + 1) / parts
                acc[p] = sumDouble(px + lo, hi - lo)
            }
        }
        po[0] = Float(partial.reduce(0, +))
        return out
    }
    let so = Broadcast.strides(of: shape, in: x.shape)
    let r = x.shape.count
    let io = so[r - 1]
    let inner = x.shape[r - 1]
    let rows = x.count / max(inner, 1)
    let parts = min(engineSplits, max(1, x.count / elementGrain), rows)
    // Partials for threads 1..<parts (thread 0 sums straight into the output).
    let scratch = parts > 1 ? TensorStorage(count: (parts - 1) * out.count) : nil
    if let scratch { scratch.pointer.update(repeating: 0, count: (parts - 1) * out.count) }
    ThreadPool.shared.run(parts: parts) { p in
        let lo = rows * p / parts, hi = rows * (p + 1) / parts
        let dst = p == 0 ? po : scratch!.pointer + (p - 1) * out.count
        var xi = lo * inner
        forEachRow(x.shape, [so], rows: lo..<hi) { off, inner in
            if io == 0 {
                var acc: Float = 0
                for j in 0..<inner { acc += px[xi + j] }
                dst[off[0]] += acc
            } else {
                let base = dst + off[0]
                for j in 0..<inner { base[j] += px[xi + j] }
            }
            xi += inner
        }
    }
    if let scratch {
        for p in 1..<parts {
            let src = scratch.pointer + (p - 1) * out.count
            for i in 0..<out.count { po[i] += src[i] }
        }
    }
    return out
}

/// Sum of n floats in double precision, eight lanes at a time.
@inline(__always)
func sumDouble(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var acc = SIMD8<Double>()
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        acc += SIMD8<Double>(v)
        i += 8
    }
    var total = acc.sum()
    while i < n { total += Double(p[i]); i += 1 }
    return total
}
