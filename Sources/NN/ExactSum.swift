import CKernels

/// Sums of float vectors that do not depend on how the terms are grouped or ordered: exact
/// mode's gradients (`GANConfig.microBatches`), whichever worker computed which term.
///
/// Each range of the buffer (one parameter tensor) gets a fixed-point scale 2^shift from the
/// largest |value| any term has there (`maxima`, maximised over every term and every rank:
/// a max does not depend on order either), chosen so that every term, rounded once to an
/// integer (ties to even), has |q| < 2^50. The integers are then added exactly in 64 bits: up to
/// `maxTerms` terms cannot overflow, and wrapping two's-complement addition is associative
/// anyway, so the ring may add them in any order. The result is the exact sum of the rounded
/// terms, rounded once more to float: a function of the set of terms and nothing else.
///
/// This is the fixed-point scheme of the reproducible-summation literature (a per-block scale
/// agreed by a max, then integer accumulation; Demmel & Nguyen's ReproBLAS generalises it to
/// several bins, Neal's superaccumulator to the whole exponent range). One scale per tensor is
/// enough here: a term's rounding error is at most 2^-51 of the tensor's largest value (float
/// keeps 2^-24 of each value), so only values below 2^-27 of their tensor's largest lose bits
/// that float would keep, and those the same way on any number of workers.
public struct ExactSum: Sendable {
    /// A term's integers stay below 2^termBits in magnitude.
    public static let termBits = 50
    /// The most terms a sum may have (so that |sum| < 2^61).
    public static let maxTerms = 1 << 11

    /// The buffer's ranges (one per tensor), each with its own scale.
    public let ranges: [Range<Int>]
    /// Per range: the power of two the terms are multiplied by, or nil where the sum is all
    /// zeros (every term zero there) or not finite (some term NaN or infinite: the result is NaN).
    public let shifts: [Int?]
    /// Per range: whether some term was not finite.
    public let nonFinite: [Bool]

    /// Scales for `ranges` from the largest |value| of every term in each (NaN when a term has a
    /// NaN or an infinity there).
    public init(ranges: [Range<Int>], maxima: [Float]) {
        precondition(ranges.count == maxima.count, "ExactSum: \(maxima.count) maxima for \(ranges.count) ranges")
        self.ranges = ranges
        nonFinite = maxima.map { !$0.isFinite }
        shifts = maxima.map { m in
            guard m.isFinite && m > 0 else { return nil }
            // m < 2^(exponent + 1), so |x| * 2^(termBits - exponent - 1) < 2^termBits.
            return ExactSum.termBits - Int(m.exponent) - 1
        }
    }

    /// The largest |value| in each range of `x` (NaN where a value is NaN, infinity where one is).
    public static func maxima(_ x: UnsafeBufferPointer<Float>, ranges: [Range<Int>]) -> [Float] {
        ranges.map { r in r.isEmpty ? 0 : rg_max_abs(x.baseAddress! + r.lowerBound, r.count) }
    }

    /// Element-wise maxima of two `maxima` results (NaN wins).
    public static func combine(_ a: [Float], _ b: [Float]) -> [Float] {
        zip(a, b).map { x, y in x.isNaN || y.isNaN ? .nan : Swift.max(x, y) }
    }

    /// Copies `x` into `dst` and returns the largest |value| in each range (as `maxima`): one
    /// pass over a term that is kept until the scales are known.
    public static func keep(_ x: UnsafeBufferPointer<Float>, in dst: UnsafeMutableBufferPointer<Float>, ranges: [Range<Int>]) -> [Float] {
        precondition(dst.count >= x.count, "ExactSum: a copy of \(dst.count) for \(x.count) values")
        return ranges.map { r in r.isEmpty ? 0 : rg_copy_max_abs(x.baseAddress! + r.lowerBound, dst.baseAddress! + r.lowerBound, r.count) }
    }

    /// Adds every term (each as long as the buffer), rounded to each range's fixed point, into
    /// `acc`, block by block so that the accumulator stays in cache.
    public func accumulate(_ terms: [UnsafePointer<Float>], into acc: UnsafeMutableBufferPointer<Int64>) {
        guard !terms.isEmpty else { return }
        terms.withUnsafeBufferPointer { t in
            for (r, shift) in zip(ranges, shifts) where !r.isEmpty {
                guard let shift else { continue }
                t.baseAddress!.withMemoryRebound(to: Optional<UnsafePointer<Float>>.self, capacity: t.count) { p in
                    rg_fixed_accumulate_terms(p, t.count, r.lowerBound, acc.baseAddress! + r.lowerBound, r.count, scale(shift))
                }
            }
        }
    }

    /// Adds one term, rounded to each range's fixed point, into `acc` (as long as the buffer).
    public func accumulate(_ x: UnsafeBufferPointer<Float>, into acc: UnsafeMutableBufferPointer<Int64>) {
        precondition(acc.count >= x.count, "ExactSum: an accumulator of \(acc.count) for \(x.count) values")
        for (r, shift) in zip(ranges, shifts) where !r.isEmpty {
            guard let shift else { continue }
            rg_fixed_accumulate(x.baseAddress! + r.lowerBound, acc.baseAddress! + r.lowerBound, r.count, scale(shift))
        }
    }

    /// The sums, as floats, from the integers summed over every term (and every rank).
    public func result(_ acc: UnsafeBufferPointer<Int64>, into out: UnsafeMutableBufferPointer<Float>) {
        for (i, r) in ranges.enumerated() where !r.isEmpty {
            if nonFinite[i] {
                for j in r { out[j] = .nan }
            } else if let shift = shifts[i] {
                rg_fixed_to_float(acc.baseAddress! + r.lowerBound, out.baseAddress! + r.lowerBound, r.count, scale(-shift))
            } else {
                for j in r { out[j] = 0 }
            }
        }
    }

    private func scale(_ shift: Int) -> Double { Double(sign: .plus, exponent: shift, significand: 1) }
}
