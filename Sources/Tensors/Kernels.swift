// Raw loops behind the ops: no graph, no allocation per element.

/// out[i] = f(x[i])
@inline(__always)
func mapUnary(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    let out = Tensor(uninitializedShape: x.shape)
    let src = x.data, dst = out.data
    for i in 0..<x.count { dst[i] = f(src[i]) }
    return out
}

/// out = f(a, b) with broadcasting.
@inline(__always)
func mapBinary(_ a: Tensor, _ b: Tensor, _ opName: String, _ f: (Float, Float) -> Float) -> Tensor {
    if a.shape == b.shape {
        let out = Tensor(uninitializedShape: a.shape)
        let pa = a.data, pb = b.data, po = out.data
        for i in 0..<a.count { po[i] = f(pa[i], pb[i]) }
        return out
    }
    guard let shape = Broadcast.shape(a.shape, b.shape) else {
        preconditionFailure("\(opName): shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    let out = Tensor(uninitializedShape: shape)
    let pa = a.data, pb = b.data, po = out.data
    if b.count == 1 && shape == a.shape {
        let s = pb[0]
        for i in 0..<a.count { po[i] = f(pa[i], s) }
        return out
    }
    if a.count == 1 && shape == b.shape {
        let s = pa[0]
        for i in 0..<b.count { po[i] = f(s, pb[i]) }
        return out
    }
    let sa = Broadcast.strides(of: a.shape, in: shape)
    let sb = Broadcast.strides(of: b.shape, in: shape)
    let last = shape.count - 1
    let ia = sa[last], ib = sb[last]
    var o = 0
    forEachRow(shape, [sa, sb]) { off, inner in
        var xa = off[0], xb = off[1]
        for j in 0..<inner {
            po[o + j] = f(pa[xa], pb[xb])
            xa += ia; xb += ib
        }
        o += inner
    }
    return out
}

/// Copies `x` broadcast to `shape`.
func broadcastCopy(_ x: Tensor, to shape: [Int]) -> Tensor {
    precondition(Broadcast.shape(x.shape, shape) == shape, "expand: \(x.shape) cannot broadcast to \(shape)")
    let out = Tensor(uninitializedShape: shape)
    let px = x.data, po = out.data
    if x.count == 1 {
        out.buffer.update(repeating: px[0])
        return out
    }
    let sx = Broadcast.strides(of: x.shape, in: shape)
    let ix = sx[shape.count - 1]
    var o = 0
    forEachRow(shape, [sx]) { off, inner in
        var xi = off[0]
        for j in 0..<inner { po[o + j] = px[xi]; xi += ix }
        o += inner
    }
    return out
}

/// Sums `x` down to `shape` (which broadcasts to x's shape): the adjoint of `broadcastCopy`.
func reduceSum(_ x: Tensor, to shape: [Int]) -> Tensor {
    precondition(Broadcast.shape(shape, x.shape) == x.shape, "sumTo: \(x.shape) cannot be summed to \(shape)")
    let out = Tensor.zeros(shape)
    let px = x.data, po = out.data
    if out.count == 1 {
        var acc: Double = 0
        for i in 0..<x.count { acc += Double(px[i]) }
        po[0] = Float(acc)
        return out
    }
    let so = Broadcast.strides(of: shape, in: x.shape)
    let r = x.shape.count
    let io = so[r - 1]
    var xi = 0
    forEachRow(x.shape, [so]) { off, inner in
        if io == 0 {
            var acc: Float = 0
            for j in 0..<inner { acc += px[xi + j] }
            po[off[0]] += acc
        } else {
            let base = po + off[0]
            for j in 0..<inner { base[j] += px[xi + j] }
        }
        xi += inner
    }
    return out
}
