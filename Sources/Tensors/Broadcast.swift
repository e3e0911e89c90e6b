/// Shape arithmetic for NumPy/PyTorch broadcasting.
public enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when they are incompatible.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Element strides of `shape` viewed inside `target` (right-aligned): 0 along broadcast dims.
    static func strides(of shape: [Int], in target: [Int]) -> [Int] {
        let r = target.count
        var strides = [Int](repeating: 0, count: r)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let ti = i + (r - shape.count)
            strides[ti] = shape[i] == 1 && target[ti] != 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }
}

/// Iterates over every element of `shape` in row-major order, calling `body(offsets)` once per
/// run of the last dimension with the starting offsets into each operand (given by their strides)
/// and the run length; the operands advance by their last-dim stride within the run.
@inline(__always)
func forEachRow(_ shape: [Int], _ strides: [[Int]], _ body: (_ offsets: UnsafeMutablePointer<Int>, _ inner: Int) -> Void) {
    let r = shape.count
    if r == 0 {
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: max(strides.count, 1))
        defer { offsets.deallocate() }
        offsets.initialize(repeating: 0, count: max(strides.count, 1))
        body(offsets, 1)
        return
    }
    let rows = Tensor.elementCount(shape) / max(shape[r - 1], 1)
    forEachRow(shape, strides, rows: 0..<rows, body)
}

/// `forEachRow` over the rows (runs of the last dimension) `rows` only, for splitting a loop
/// over threads. `shape` has rank >= 1.
@inline(__always)
func forEachRow(_ shape: [Int], _ strides: [[Int]], rows: Range<Int>,
                _ body: (_ offsets: UnsafeMutablePointer<Int>, _ inner: Int) -> Void) {
    let r = shape.count
    let nOps = strides.count
    if rows.isEmpty || Tensor.elementCount(shape) == 0 { return }
    let inner = shape[r - 1]
    let offsets = UnsafeMutablePointer<Int>.allocate(capacity: max(nOps, 1))
    defer { offsets.deallocate() }
    offsets.initialize(repeating: 0, count: max(nOps, 1))
    // The outer index of the first row, and the operands' offsets there.
    let idx = UnsafeMutablePointer<Int>.allocate(capacity: max(r, 1))
    defer { idx.deallocate() }
    var rem = rows.lowerBound
    for d in stride(from: r - 2, through: 0, by: -1) {
        idx[d] = rem % shape[d]
        rem /= shape[d]
        for k in 0..<nOps { offsets[k] += idx[d] * strides[k][d] }
    }
    for _ in rows {
        body(offsets, inner)
        // advance the outer counter (dims 0..<r-1)
        var d = r - 2
        while d >= 0 {
            idx[d] += 1
            for k in 0..<nOps { offsets[k] += strides[k][d] }
            if idx[d] < shape[d] { break }
            for k in 0..<nOps { offsets[k] -= strides[k][d] * shape[d] }
            idx[d] = 0
            d -= 1
        }
    }
}
