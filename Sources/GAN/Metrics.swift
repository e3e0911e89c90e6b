import Foundation
import NN
import Tensors

/// Mean and covariance (unbiased, as numpy.cov) of feature rows, in double precision.
public struct FeatureStatistics: Sendable {
    public let mean: [Double]
    public let covariance: [Double]   // d x d row-major
    public let dim: Int

    public init(features: Tensor) {
        precondition(features.rank == 2 && features.shape[0] >= 2, "FeatureStatistics: needs [N >= 2, d] features, got \(features.shape)")
        let (n, d) = (features.shape[0], features.shape[1])
        var mu = [Double](repeating: 0, count: d)
        let f = features.data
        for i in 0..<n { for j in 0..<d { mu[j] += Double(f[i * d + j]) } }
        for j in 0..<d { mu[j] /= Double(n) }
        var centered = [Double](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { centered[i * d + j] = Double(f[i * d + j]) - mu[j] } }
        mean = mu
        covariance = matmul64(centered, centered, m: d, n: d, k: n, transA: true, alpha: 1 / Double(n - 1))
        dim = d
    }

    public init(mean: [Double], covariance: [Double]) {
        self.mean = mean
        self.covariance = covariance
        dim = mean.count
        precondition(covariance.count == dim * dim)
    }
}

/// The Frechet distance between two Gaussians (FID on classifier features):
/// |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), where tr((S1 S2)^(1/2)) is computed as
/// the sum of square roots of the eigenvalues of the symmetric S1^(1/2) S2 S1^(1/2).
public func frechetDistance(_ a: FeatureStatistics, _ b: FeatureStatistics) -> Double {
    precondition(a.dim == b.dim, "frechetDistance: feature sizes \(a.dim) and \(b.dim) differ")
    let d = a.dim
    var diff = 0.0
    for j in 0..<d { diff += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
    var tr1 = 0.0, tr2 = 0.0
    for j in 0..<d { tr1 += a.covariance[j * d + j]; tr2 += b.covariance[j * d + j] }
    let s1 = symmetricSqrt(a.covariance, d)
    var m = matmul64(matmul64(s1, b.covariance, m: d, n: d, k: d), s1, m: d, n: d, k: d)
    // Symmetrise against rounding before the eigen-decomposition.
    for i in 0..<d { for j in (i + 1)..<d { let s = (m[i * d + j] + m[j * d + i]) / 2; m[i * d + j] = s; m[j * d + i] = s } }
    let trSqrt = symmetricEigen(m, d).values.reduce(0) { $0 + max($1, 0).squareRoot() }
    return diff + tr1 + tr2 - 2 * trSqrt
}

/// Classifier score (the Inception Score with our MNIST classifier): exp(E_x KL(p(y|x) || p(y))),
/// and mode coverage: the entropy (nats) of the histogram of predicted classes (log 10 = 2.303
/// when all ten digits appear equally), with the histogram itself.
public struct ClassDistributionScores: Sendable {
    public let classifierScore: Double
    public let modeEntropy: Double
    public let histogram: [Int]
}

public func classDistributionScores(probabilities p: Tensor) -> ClassDistributionScores {
    let (n, k) = (p.shape[0], p.shape[1])
    var marginal = [Double](repeating: 0, count: k)
    var hist = [Int](repeating: 0, count: k)
    for i in 0..<n {
        var best = 0
        for j in 0..<k {
            marginal[j] += Double(p.data[i * k + j]) / Double(n)
            if p.data[i * k + j] > p.data[i * k + best] { best = j }
        }
        hist[best] += 1
    }
    var kl = 0.0
    for i in 0..<n {
        for j in 0..<k {
            let pij = Double(p.data[i * k + j])
            if pij > 0 { kl += pij * (Foundation.log(pij) - Foundation.log(max(marginal[j], 1e-30))) }
        }
    }
    var entropy = 0.0
    for c in hist where c > 0 { let q = Double(c) / Double(n); entropy -= q * Foundation.log(q) }
    return ClassDistributionScores(classifierScore: Foundation.exp(kl / Double(n)), modeEntropy: entropy, histogram: hist)
}
