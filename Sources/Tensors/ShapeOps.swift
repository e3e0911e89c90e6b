// Shape ops and reductions. Views that are not contiguous are copies.

extension Tensor {
    /// Normalises a possibly negative dimension index.
    @inline(__always) func axis(_ d: Int, _ op: String) -> Int {
        let a = d < 0 ? d + rank : d
        precondition(a >= 0 && a < Swift.max(rank, 1), "\(op): dimension \(d) out of range for shape \(shape)")
        return a
    }

    // MARK: reshape family (shares storage)

    /// Same values, new shape; one dimension may be -1.
    public func reshape(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let rest = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(rest > 0 && count % rest == 0, "reshape: cannot infer -1 in \(newShape) for \(count) elements")
            s[i] = count / rest
        }
        precondition(Tensor.elementCount(s) == count, "reshape: \(shape) (\(count) elements) to \(newShape)")
        if s == shape { return self }
        let out = Tensor(shape: s, storage: storage, offset: offset)
        let inShape = shape
        return record(out, .reshape, [self]) { g, _, _ in [g.reshape(inShape)] }
    }

    /// Flattens dims `from...` into one (PyTorch `flatten(start_dim)`).
    public func flatten(from start: Int = 0) -> Tensor {
        let a = axis(start, "flatten")
        return reshape(Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    public func unsqueeze(_ d: Int) -> Tensor {
        let a = d < 0 ? d + rank + 1 : d
        precondition(a >= 0 && a <= rank, "unsqueeze: dimension \(d) out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: a)
        return reshape(s)
    }

    // MARK: permute (copies)

    public func permute(_ dims: [Int]) -> Tensor {
        precondition(dims.count == rank && Set(dims) == Set(0..<rank), "permute: \(dims) is not a permutation of \(rank) dims")
        if dims == Array(0..<rank) { return self }
        let outShape = dims.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let srcStrides = dims.map { inStrides[$0] }
        let out = Tensor(uninitializedShape: outShape)
        let px = data, po = out.data
        let inner = srcStrides[rank - 1]
        var o = 0
        forEachRow(outShape, [srcStrides]) { off, n in
            var xi = off[0]
            for j in 0..<n { po[o + j] = px[xi]; xi += inner }
            o += n
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, d) in dims.enumerated() { inverse[d] = i }
        return record(out, .permute, [self]) { g, _, _ in [g.permute(inverse)] }
    }

    public func transpose(_ d0: Int, _ d1: Int) -> Tensor {
        var dims = Array(0..<rank)
        dims.swapAt(axis(d0, "transpose"), axis(d1, "transpose"))
        return permute(dims)
    }

    /// Transpose of a 2-d tensor.
    public var t: Tensor {
        precondition(rank == 2, "t: needs a 2-d tensor, got \(shape)")
        return permute([1, 0])
    }

    // MARK: broadcast and its adjoint

    /// Copies this tensor broadcast to `shape` (PyTorch `expand`, materialised).
    public func expand(_ target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = broadcastCopy(self, to: target)
        let inShape = shape
        return record(out, .expand, [self]) { g, _, _ in [g.sumTo(inShape)] }
    }

    /// Sums over the broadcast dims so the result has `target` shape (the adjoint of expand).
    public func sumTo(_ target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = reduceSum(self, to: target)
        let inShape = shape
        return record(out, .sumTo, [self]) { g, _, _ in [g.expand(inShape)] }
    }

    // MARK: reductions

    /// Sum over `dims` (all when empty).
    public func sum(dims: [Int] = [], keepDim: Bool = false) -> Tensor {
        let axes = dims.isEmpty ? Array(0..<rank) : dims.map { axis($0, "sum") }
        var keep = shape
        for a in axes { keep[a] = 1 }
        let reduced = sumTo(keep)
        if keepDim { return reduced }
        return reduced.reshape(shape.enumerated().filter { !axes.contains($0.offset) }.map { $0.element })
    }

    public func sum(dim: Int, keepDim: Bool = false) -> Tensor { sum(dims: [dim], keepDim: keepDim) }

    /// Mean over `dims` (all when empty).
    public func mean(dims: [Int] = [], keepDim: Bool = false) -> Tensor {
        let axes = dims.isEmpty ? Array(0..<rank) : dims.map { axis($0, "mean") }
        let n = axes.reduce(1) { $0 * shape[$1] }
        return sum(dims: axes, keepDim: keepDim) * (1 / Float(Swift.max(n, 1)))
    }

    public func mean(dim: Int, keepDim: Bool = false) -> Tensor { mean(dims: [dim], keepDim: keepDim) }

    /// Biased variance over `dims` (as batch norm uses it).
    public func variance(dims: [Int], keepDim: Bool = false, unbiased: Bool = false) -> Tensor {
        let axes = dims.map { axis($0, "variance") }
        let n = axes.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(dims: axes, keepDim: true)
        let ss = (centered * centered).sum(dims: axes, keepDim: keepDim)
        return ss * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }

    /// Euclidean norm over `dims`; its gradient at a zero norm is zero (as PyTorch's).
    public func norm(dims: [Int], keepDim: Bool = false) -> Tensor {
        let axes = dims.map { axis($0, "norm") }
        var keep = shape
        for a in axes { keep[a] = 1 }
        let sq = mapUnary(self) { $0 * $0 }
        let out = reduceSum(sq, to: keep)
        out.buffer.withMemoryRebound(to: Float.self) { b in for i in b.indices { b[i] = b[i].squareRoot() } }
        let result = keepDim ? out : out.reshape(shape.enumerated().filter { !axes.contains($0.offset) }.map { $0.element })
        let detachedShape = result.shape
        return record(result.detach(), .norm, [self]) { g, y, _ in
            precondition(g.shape == detachedShape)
            let gk = g.reshape(keep), yk = y.reshape(keep)
            return [self * (gk / yk.clamp(min: 1e-30))]
        }
    }

    public func norm(dim: Int, keepDim: Bool = false) -> Tensor { norm(dims: [dim], keepDim: keepDim) }

    // MARK: slicing and joining

    /// `length` entries of dimension `dim` starting at `start` (a copy).
    public func narrow(_ dim: Int, _ start: Int, _ length: Int) -> Tensor {
        let a = axis(dim, "narrow")
        precondition(start >= 0 && length >= 0 && start + length <= shape[a],
                     "narrow: [\(start), \(start + length)) out of range for dim \(dim) of \(shape)")
        var outShape = shape
        outShape[a] = length
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let out = Tensor(uninitializedShape: outShape)
        let px = data, po = out.data
        for o in 0..<outer {
            (po + o * length * inner).update(from: px + (o * shape[a] + start) * inner, count: length * inner)
        }
        let full = shape
        return record(out, .narrow, [self]) { g, _, _ in [g.embed(in: full, dim: a, at: start)] }
    }

    /// Places this tensor into zeros of `full` shape at `start` along `dim` (adjoint of narrow).
    func embed(in full: [Int], dim a: Int, at start: Int) -> Tensor {
        let out = Tensor.zeros(full)
        let outer = full[..<a].reduce(1, *), inner = full[(a + 1)...].reduce(1, *)
        let length = shape[a]
        let px = data, po = out.data
        for o in 0..<outer {
            (po + (o * full[a] + start) * inner).update(from: px + o * length * inner, count: length * inner)
        }
        return record(out, .embed, [self]) { g, _, _ in [g.narrow(a, start, length)] }
    }

    /// Splits dimension `dim` into `chunks` pieces (the last may be smaller), like torch.chunk.
    public func chunk(_ chunks: Int, dim: Int) -> [Tensor] {
        let a = axis(dim, "chunk")
        precondition(chunks > 0, "chunk: needs at least one chunk")
        let size = (shape[a] + chunks - 1) / chunks
        return split(size: Swift.max(size, 1), dim: a)
    }

    /// Splits dimension `dim` into pieces of `size` (the last may be smaller), like torch.split.
    public func split(size: Int, dim: Int) -> [Tensor] {
        let a = axis(dim, "split")
        precondition(size > 0, "split: size must be positive")
        return stride(from: 0, to: shape[a], by: size).map { narrow(a, $0, Swift.min(size, shape[a] - $0)) }
    }
}

/// Joins tensors along `dim`; all other dims must agree.
public func concat(_ tensors: [Tensor], dim: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concat: no tensors")
    let first = tensors[0]
    let a = first.axis(dim, "concat")
    for t in tensors {
        precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                     "concat: shapes \(tensors.map { $0.shape }) do not agree outside dim \(dim)")
    }
    var outShape = first.shape
    outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
    let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
    let out = Tensor(uninitializedShape: outShape)
    let po = out.data
    var starts: [Int] = []
    var start = 0
    for t in tensors {
        starts.append(start)
        let len = t.shape[a]
        for o in 0..<outer {
            (po + (o * outShape[a] + start) * inner).update(from: t.data + o * len * inner, count: len * inner)
        }
        start += len
    }
    return record(out, .concat, tensors) { g, _, needs in
        tensors.indices.map { i in needs[i] ? g.narrow(a, starts[i], tensors[i].shape[a]) : nil }
    }
}
