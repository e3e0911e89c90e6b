// Numerically stable binary cross-entropy losses (mean reduction, as PyTorch's defaults).

/// `F.binary_cross_entropy_with_logits(x, target)`: mean(softplus(x) - x * target).
public func bceWithLogits(_ logits: Tensor, target: Tensor) -> Tensor {
    precondition(logits.shape == target.shape || Broadcast.shape(logits.shape, target.shape) == logits.shape,
                 "bceWithLogits: target \(target.shape) does not match logits \(logits.shape)")
    return (logits.softplus() - logits * target).mean()
}

/// `F.binary_cross_entropy(p, target)` on probabilities: each log is clamped at -100 like
/// PyTorch's, and the gradient is (p - t) / max(p (1 - p), 1e-12) / n like PyTorch's.
public func bce(_ p: Tensor, target: Tensor) -> Tensor {
    precondition(p.shape == target.shape, "bce: target \(target.shape) does not match input \(p.shape)")
    precondition(!target.requiresGrad, "bce: gradients with respect to the target are not supported")
    var acc: Double = 0
    let pp = p.data, pt = target.data
    for i in 0..<p.count {
        let x = pp[i], t = pt[i]
        precondition(x >= 0 && x <= 1, "bce: input \(x) at index \(i) is outside [0, 1] (use bceWithLogits on logits)")
        let lp = max(libm_logf(x), -100), l1p = max(libm_logf(1 - x), -100)
        acc -= Double(t * lp + (1 - t) * l1p)
    }
    let out = Tensor(Float(acc / Double(max(p.count, 1))))
    let n = Float(max(p.count, 1))
    return record(out, "binary_cross_entropy", [p]) { g, _, _ in
        [g * ((p - target) / (p * (1 - p)).clamp(min: 1e-12)) * (1 / n)]
    }
}
