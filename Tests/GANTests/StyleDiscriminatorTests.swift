import Foundation
import GAN
import NN
import Tensors
import TestSupport
import XCTest

/// StyleGAN's discriminator: the minibatch standard deviation feature (its value against the
/// formula, its groups, its first and second derivatives) and the discriminator built on it.
final class StyleDiscriminatorTests: XCTestCase {
    /// The appended map per sample, computed directly in Double from the definition.
    func expectedStd(_ x: Tensor, group g: Int) -> [Double] {
        let (n, f) = (x.shape[0], x.count / x.shape[0])
        let v = x.toArray()
        var out = [Double](repeating: 0, count: n)
        for start in stride(from: 0, to: n, by: g) {
            var acc = 0.0
            for k in 0..<f {
                let xs = (start..<start + g).map { Double(v[$0 * f + k]) }
                let mean = xs.reduce(0, +) / Double(g)
                acc += (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(g) + 1e-8).squareRoot()
            }
            for i in start..<start + g { out[i] = acc / Double(f) }
        }
        return out
    }

    func testValueGroupsAndPassThrough() {
        var rng = RandomGenerator(seed: 3)
        let layer = MinibatchStdDev(groupSize: 4)
        // Batch 8: two groups of 4. Batch 6: groups of 3 (the largest divisor not above 4).
        // Batch 5: groups of 1 (prime), where every std is 0 (+1e-8 under the root).
        for (n, g) in [(8, 4), (6, 3), (5, 1), (2, 2)] {
            XCTAssertEqual(layer.group(for: n), g, "batch \(n)")
            let x = Tensor.randn([n, 3, 2, 2], generator: &rng)
            let y = layer(x)
            XCTAssertEqual(y.shape, [n, 4, 2, 2])
            // The first C channels are x unchanged; channel C is the group's number everywhere.
            let yv = y.toArray(), xv = x.toArray()
            let want = expectedStd(x, group: g)
            for i in 0..<n {
                for k in 0..<12 { XCTAssertEqual(yv[i * 16 + k], xv[i * 12 + k], "batch \(n) sample \(i)") }
                for p in 0..<4 { XCTAssertEqual(Double(yv[i * 16 + 12 + p]), want[i], accuracy: 1e-5, "batch \(n) sample \(i)") }
            }
        }
        // A group of identical samples (a collapsed generator) gives 1e-4, a varied one far more.
        let same = concat(Array(repeating: Tensor.randn([1, 3, 2, 2], generator: &rng), count: 4), dim: 0)
        XCTAssertEqual(layer(same).toArray()[12], 1e-4, accuracy: 1e-6)
        XCTAssertGreaterThan(layer(Tensor.randn([4, 3, 2, 2], generator: &rng)).toArray()[12], 0.3)
    }

    /// First derivatives for the D step, second for WGAN-GP's penalty through D.
    func testGradients() {
        var rng = RandomGenerator(seed: 5)
        let layer = MinibatchStdDev(groupSize: 4)
        let x = Tensor.randn([8, 2, 2, 2], generator: &rng)
        x.requiresGrad = true
        gradCheck("mbstd", [x]) { layer($0[0]) }
        gradGradCheck("mbstd", [x]) { layer($0[0]).squared() }
    }

    /// Groups are consecutive samples, so a batch split into shards of a multiple of the group
    /// size (what each worker sees) scores each image as the whole batch does.
    func testShardsScoreAsTheWholeBatch() {
        var rng = RandomGenerator(seed: 9)
        let d = StyleDiscriminator(nc: 1, ndf: 4, imageSize: 16, rng: &rng)
        let x = Tensor.randn([8, 1, 16, 16], generator: &rng)
        let whole = withNoGrad { d.score(x) }
        let halves = withNoGrad { concat([d.score(x.narrow(0, 0, 4)), d.score(x.narrow(0, 4, 4))], dim: 0) }
        assertClose(halves, whole, atol: 1e-6, rtol: 1e-5, "shards of 4 against the batch of 8")
        XCTAssertEqual(whole.shape, [8, 1])
        // No BatchNorm anywhere in it.
        XCTAssertFalse(d.modules().contains { $0 is BatchNorm })
    }
}
