// Nearest-neighbour upsampling and average pooling by an integer factor, on [N, C, H, W].

private func upsampleKernel(_ x: Tensor, _ f: Int) -> Tensor {
    let (nc, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], h * f, w * f])
    let px = x.data, po = out.data
    let wo = w * f
    for plane in 0..<nc {
        let src = px + plane * h * w, dst = po + plane * h * f * wo
        for y in 0..<h {
            let row = dst + y * f * wo
            for xx in 0..<w {
                let v = src[y * w + xx]
                for k in 0..<f { row[xx * f + k] = v }
            }
            for r in 1..<max(f, 1) { (row + r * wo).update(from: row, count: wo) }
        }
    }
    return out
}

/// Sums each f x f block (the adjoint of nearest upsampling).
private func sumPoolKernel(_ x: Tensor, _ f: Int, scale: Float) -> Tensor {
    let (nc, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let (ho, wo) = (h / f, w / f)
    let out = Tensor.zeros([x.shape[0], x.shape[1], ho, wo])
    let px = x.data, po = out.data
    for plane in 0..<nc {
        let src = px + plane * h * w, dst = po + plane * ho * wo
        for y in 0..<(ho * f) {
            let row = src + y * w, orow = dst + (y / f) * wo
            for xx in 0..<(wo * f) { orow[xx / f] += row[xx] }
        }
        for i in 0..<(ho * wo) { dst[i] *= scale }
    }
    return out
}

extension Tensor {
    /// `F.interpolate(x, scale_factor=f, mode='nearest')` for an integer factor.
    public func upsampleNearest(_ factor: Int = 2) -> Tensor {
        precondition(rank == 4 && factor >= 1, "upsampleNearest: needs [N, C, H, W] and factor >= 1, got \(shape), \(factor)")
        let out = upsampleKernel(self, factor)
        return record(out, .upsampleNearest2d, [self]) { g, _, _ in [g.avgPool(factor) * Float(factor * factor)] }
    }

    /// `F.avg_pool2d(x, f)`: the mean of each f x f block (trailing rows/columns that do not fill
    /// a block are dropped, as PyTorch does).
    public func avgPool(_ factor: Int = 2) -> Tensor {
        precondition(rank == 4 && factor >= 1 && shape[2] >= factor && shape[3] >= factor,
                     "avgPool: needs [N, C, H, W] with H, W >= \(factor), got \(shape)")
        let out = sumPoolKernel(self, factor, scale: 1 / Float(factor * factor))
        let inShape = shape
        return record(out, .avgPool2d, [self]) { g, _, _ in
            var up = g.upsampleNearest(factor) * (1 / Float(factor * factor))
            if up.shape != inShape {
                up = up.embedCorner(in: inShape)
            }
            return [up]
        }
    }

    /// Places an [N, C, h, w] tensor at the top-left of zeros shaped `full` (for odd pool sizes).
    func embedCorner(in full: [Int]) -> Tensor {
        var t = self
        if full[3] != shape[3] { t = concat([t, Tensor.zeros([shape[0], shape[1], shape[2], full[3] - shape[3]])], dim: 3) }
        if full[2] != shape[2] { t = concat([t, Tensor.zeros([shape[0], shape[1], full[2] - shape[2], full[3]])], dim: 2) }
        return t
    }
}
