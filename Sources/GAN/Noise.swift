import Tensors

/// Per-sample randomness that does not depend on how a batch is sharded: every latent, label
/// noise and interpolation weight is drawn from a generator keyed by (seed, purpose, step,
/// iteration, global sample index), so one process with batch B and N workers with B/N each draw
/// the same numbers for the same samples.
public enum Purpose: UInt64, Sendable {
    case latent = 1, latent2 = 2, labelNoise = 3, gpAlpha = 4, styleMix = 5, fixedNoise = 6, interpolate = 7
}

public func sampleGenerator(seed: UInt64, _ purpose: Purpose, step: Int, iteration: Int = 0, index: Int = 0) -> RandomGenerator {
    // A SplitMix-style mix of the key into one stream number.
    var h = purpose.rawValue &* 0x9E37_79B9_7F4A_7C15
    for v in [UInt64(truncatingIfNeeded: step), UInt64(truncatingIfNeeded: iteration), UInt64(truncatingIfNeeded: index)] {
        h = (h ^ v) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
    }
    return RandomGenerator(seed: seed, stream: h)
}

/// Standard-normal latents [indices.count, dim], row j drawn for global sample indices[j].
public func latents(seed: UInt64, _ purpose: Purpose = .latent, step: Int, iteration: Int = 0, indices: [Int], dim: Int) -> Tensor {
    let z = Tensor(uninitializedShape: [indices.count, dim])
    for (j, idx) in indices.enumerated() {
        var g = sampleGenerator(seed: seed, purpose, step: step, iteration: iteration, index: idx)
        for k in 0..<dim { z.data[j * dim + k] = g.normal() }
    }
    return z
}

/// One uniform [lo, hi) value per sample, shaped `shape` with the sample as dim 0.
public func perSampleUniform(seed: UInt64, _ purpose: Purpose, step: Int, iteration: Int = 0, indices: [Int],
                             lo: Float = 0, hi: Float = 1, shape: [Int]) -> Tensor {
    let t = Tensor(uninitializedShape: shape)
    precondition(shape[0] == indices.count && t.count == indices.count)
    for (j, idx) in indices.enumerated() {
        var g = sampleGenerator(seed: seed, purpose, step: step, iteration: iteration, index: idx)
        t.data[j] = g.uniform(lo, hi)
    }
    return t
}
