// Numerically stable cross-entropy losses (mean reduction, as PyTorch's defaults), and softmax.

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
    return record(out, .binaryCrossEntropy, [p]) { g, _, _ in
        [g * ((p - target) / (p * (1 - p)).clamp(min: 1e-12)) * (1 / n)]
    }
}

/// Mean cross-entropy of `logits` [N, K] against integer `labels`, computed stably
/// (log-sum-exp with the row maximum held constant, which leaves the gradient exact).
public func crossEntropy(_ logits: Tensor, labels: [Int]) -> Tensor {
    let (n, k) = (logits.shape[0], logits.shape[1])
    precondition(labels.count == n && labels.allSatisfy { $0 >= 0 && $0 < k }, "crossEntropy: labels must be \(n) classes in 0..<\(k)")
    let rowMax = Tensor(uninitializedShape: [n, 1])
    let oneHot = Tensor.zeros([n, k])
    for i in 0..<n {
        var m = -Float.infinity
        for j in 0..<k { m = max(m, logits.data[i * k + j]) }
        rowMax.data[i] = m
        oneHot.data[i * k + labels[i]] = 1
    }
    let lse = (logits - rowMax).exp().sum(dim: 1, keepDim: true).log() + rowMax
    return (lse - (logits * oneHot).sum(dim: 1, keepDim: true)).mean()
}

/// Row-wise softmax (no graph needed: used for scores).
public func softmax(_ logits: Tensor) -> Tensor {
    let (n, k) = (logits.shape[0], logits.shape[1])
    let out = Tensor(uninitializedShape: logits.shape)
    for i in 0..<n {
        var m = -Float.infinity
        for j in 0..<k { m = max(m, logits.data[i * k + j]) }
        var s: Float = 0
        for j in 0..<k { let e = libm_expf(logits.data[i * k + j] - m); out.data[i * k + j] = e; s += e }
        for j in 0..<k { out.data[i * k + j] /= s }
    }
    return out
}
