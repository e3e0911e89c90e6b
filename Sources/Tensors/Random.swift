#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The project's random generator, fixed so that runs reproduce on any machine:
///
/// - state: xoshiro256** (Blackman and Vigna, 2018), 4 x 64 bits;
/// - seeding: the four state words are successive outputs of SplitMix64 started at
///   `seed &+ stream &* 0x9E3779B97F4A7C15`, so `(seed, stream)` pairs give independent sequences
///   (use a stream per purpose, or per step and sample, so that sharding never changes numbers);
/// - `uniform()`: the top 24 bits of the next output times 2^-24, in [0, 1);
/// - `normal()`: Box-Muller on two 53-bit doubles u1 in (0, 1], u2 in [0, 1):
///   r = sqrt(-2 ln u1), giving r cos(2 pi u2) then r sin(2 pi u2) on successive calls.
public struct RandomGenerator: Sendable, Equatable, Codable {
    public private(set) var state: [UInt64]
    private var spare: Double?

    public init(seed: UInt64, stream: UInt64 = 0) {
        var sm = seed &+ stream &* 0x9E37_79B9_7F4A_7C15
        var s: [UInt64] = []
        for _ in 0..<4 {
            sm = sm &+ 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            s.append(z ^ (z >> 31))
        }
        if s.allSatisfy({ $0 == 0 }) { s[0] = 1 }
        state = s
    }

    /// Restores a generator from `state` (and the pending second normal, if any).
    public init(state: [UInt64], spareNormal: Double? = nil) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "RandomGenerator: state must be 4 words, not all zero")
        self.state = state
        spare = spareNormal
    }

    public var spareNormal: Double? { spare }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = RandomGenerator.rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = RandomGenerator.rotl(state[3], 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Uniform double in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Float {
        if let s = spare { spare = nil; return Float(s) }
        let u1 = 1 - uniformDouble()          // (0, 1]
        let u2 = uniformDouble()
        let r = (-2 * libm_log(u1)).squareRoot()
        let a = 2 * Double.pi * u2
        spare = r * libm_sin(a)
        return Float(r * libm_cos(a))
    }

    /// Fills out[0..<n] with successive `next() >> shift` values (the state held in registers,
    /// not the array, for the loop: start-up draws millions of initial weights).
    mutating func fillBits(_ out: UnsafeMutablePointer<UInt64>, _ n: Int, shift: UInt64) {
        guard n > 0 else { return }
        var s0 = state[0], s1 = state[1], s2 = state[2], s3 = state[3]
        for i in 0..<n {
            out[i] = (RandomGenerator.rotl(s1 &* 5, 7) &* 9) >> shift
            let t = s1 << 17
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = RandomGenerator.rotl(s3, 45)
        }
        state = [s0, s1, s2, s3]
    }

    /// Takes the pending second value of the last Box-Muller pair, if any.
    mutating func takeSpareNormal() -> Double? {
        defer { spare = nil }
        return spare
    }

    mutating func setSpareNormal(_ v: Double) { spare = v }

    /// Integer in 0..<n (rejection sampling, no modulo bias).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs n > 0")
        let bound = UInt64(n)
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let v = next()
            if v < limit { return Int(v % bound) }
        }
    }

    /// A uniformly random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, int(below: i + 1)) }
        return p
    }
}

extension Tensor {
    /// Standard normal values from `generator`, in row-major order: the values of `normal()`
    /// called once per element, bit for bit. The uniforms are drawn in order, a block at a time;
    /// the Box-Muller transforms of a block (a log, a sine and a cosine per pair: half of a
    /// DCGAN's start-up) run on the engine's threads.
    public static func randn(_ shape: [Int], generator: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.data, n = t.count
        var i = 0
        if n > 0, let s = generator.takeSpareNormal() { p[0] = Float(s); i = 1 }
        let block = 1 << 15   // pairs per block
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * block) { bits in
            let u = bits.baseAddress!
            while i < n {
                let pairs = min(block, (n - i + 1) / 2)
                generator.fillBits(u, 2 * pairs, shift: 11)
                let base = i, last = n - 1
                parallelFor(pairs, grain: 2048) { range in
                    for k in range {
                        let u1 = 1 - Double(u[2 * k]) * 0x1p-53          // (0, 1]
                        let u2 = Double(u[2 * k + 1]) * 0x1p-53
                        let r = (-2 * libm_log(u1)).squareRoot()
                        let a = 2 * Double.pi * u2
                        let j = base + 2 * k
                        p[j] = Float(r * libm_cos(a))
                        if j < last { p[j + 1] = Float(r * libm_sin(a)) }
                    }
                }
                i += 2 * pairs
                if i > n {
                    // An odd count: the last pair's second value is the generator's spare.
                    let u1 = 1 - Double(u[2 * pairs - 2]) * 0x1p-53, u2 = Double(u[2 * pairs - 1]) * 0x1p-53
                    generator.setSpareNormal((-2 * libm_log(u1)).squareRoot() * libm_sin(2 * Double.pi * u2))
                }
            }
        }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform values in [lo, hi) from `generator`, in row-major order (`uniform(lo, hi)` once
    /// per element, bit for bit).
    public static func rand(_ shape: [Int], _ lo: Float = 0, _ hi: Float = 1, generator: inout RandomGenerator,
                            requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        let p = t.data, n = t.count
        let block = 1 << 16
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: block) { bits in
            var i = 0
            while i < n {
                let m = min(block, n - i)
                generator.fillBits(bits.baseAddress!, m, shift: 40)
                for k in 0..<m { p[i + k] = lo + (hi - lo) * (Float(bits[k]) * 0x1p-24) }
                i += m
            }
        }
        t.requiresGrad = requiresGrad
        return t
    }
}

@inline(__always) func libm_log(_ x: Double) -> Double { log(x) }
@inline(__always) func libm_sin(_ x: Double) -> Double { sin(x) }
@inline(__always) func libm_cos(_ x: Double) -> Double { cos(x) }
