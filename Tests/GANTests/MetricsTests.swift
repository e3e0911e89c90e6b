import GAN
import TestSupport
import XCTest
@testable import Tensors

final class MetricsTests: XCTestCase {
    /// FID against pytorch-fid's calculate_frechet_distance (scipy sqrtm) on fixed features.
    func testFrechetDistanceMatchesPytorchFid() {
        let fx = Fixtures.load("fid.safetensors", target: "GANTests")
        let a = FeatureStatistics(features: fx.t("a")), b = FeatureStatistics(features: fx.t("b"))
        assertClose(Tensor(shape: [12], values: a.mean.map { Float($0) }), fx.t("mu_a"), atol: 1e-6, rtol: 1e-5, "mean")
        assertClose(Tensor(shape: [12, 12], values: b.covariance.map { Float($0) }), fx.t("sigma_b"), atol: 1e-6, rtol: 1e-5, "covariance")
        XCTAssertEqual(frechetDistance(a, b), Double(fx.t("fid").item), accuracy: 1e-4 * Double(fx.t("fid").item))
        XCTAssertEqual(frechetDistance(a, a), 0, accuracy: 1e-6)
        // Symmetric in its arguments.
        XCTAssertEqual(frechetDistance(a, b), frechetDistance(b, a), accuracy: 1e-6)
    }

    func testFrechetDistanceOfShiftedGaussians() {
        // Same covariance, means 3 apart along one axis: FID = 9.
        var g = RandomGenerator(seed: 3)
        let x = Tensor.randn([4000, 3], generator: &g)
        let y = x + Tensor(shape: [3], values: [3, 0, 0])
        XCTAssertEqual(frechetDistance(FeatureStatistics(features: x), FeatureStatistics(features: y)), 9, accuracy: 1e-3)
    }

    func testClassDistributionScores() {
        // Confident and uniform over 10 classes: score 10, entropy log 10.
        var rows: [Float] = []
        for i in 0..<100 { for j in 0..<10 { rows.append(j == i % 10 ? 1 : 0) } }
        let s = classDistributionScores(probabilities: Tensor(shape: [100, 10], values: rows))
        XCTAssertEqual(s.classifierScore, 10, accuracy: 1e-6)
        XCTAssertEqual(s.modeEntropy, Foundation.log(10), accuracy: 1e-9)
        XCTAssertEqual(s.histogram, Array(repeating: 10, count: 10))
        // Mode collapse onto one class: score 1, entropy 0.
        var one: [Float] = []
        for _ in 0..<50 { for j in 0..<10 { one.append(j == 3 ? 1 : 0) } }
        let c = classDistributionScores(probabilities: Tensor(shape: [50, 10], values: one))
        XCTAssertEqual(c.classifierScore, 1, accuracy: 1e-6)
        XCTAssertEqual(c.modeEntropy, 0, accuracy: 1e-12)
    }

    func testLosses() {
        let real = Tensor(shape: [2, 1], values: [2, -1]), fake = Tensor(shape: [2, 1], values: [0.5, -3])
        let ones = Tensor.ones([2, 1])
        // Hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 2)/2 + (1.5 + 0)/2
        XCTAssertEqual(LossKind.hinge.loss.discriminatorLoss(real, fake, ones).item, 1.75, accuracy: 1e-6)
        XCTAssertEqual(LossKind.wgan.loss.discriminatorLoss(real, fake, ones).item, -1.25 - 0.5, accuracy: 1e-6)
        XCTAssertEqual(LossKind.hinge.loss.generatorLoss(fake).item, 1.25, accuracy: 1e-6)
        // BCE: -log sigmoid(real) - log(1 - sigmoid(fake)), averaged.
        func sp(_ x: Double) -> Double { Foundation.log(1 + Foundation.exp(x)) }
        let bce = (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2
        XCTAssertEqual(Double(LossKind.bce.loss.discriminatorLoss(real, fake, ones).item), bce, accuracy: 1e-5)
        // Generator: non-saturating -log D(G(z)); saturating log(1 - D(G(z))).
        XCTAssertEqual(Double(LossKind.bce.loss.generatorLoss(fake).item), (sp(-0.5) + sp(3)) / 2, accuracy: 1e-5)
        XCTAssertEqual(Double(LossKind.bceSaturating.loss.generatorLoss(fake).item), -(sp(0.5) + sp(-3)) / 2, accuracy: 1e-5)
    }

    func testGrowthSchedule() {
        let s = GrowthSchedule(totalSteps: 70, maxLevel: 3)   // 7 phases of 10
        XCTAssertEqual(s.state(at: 0), GrowthState(level: 0, alpha: 1))
        XCTAssertEqual(s.state(at: 10), GrowthState(level: 1, alpha: 0))
        XCTAssertEqual(s.state(at: 15), GrowthState(level: 1, alpha: 0.5))
        XCTAssertEqual(s.state(at: 20), GrowthState(level: 1, alpha: 1))
        XCTAssertEqual(s.state(at: 35), GrowthState(level: 2, alpha: 0.5))
        XCTAssertEqual(s.state(at: 69), GrowthState(level: 3, alpha: 1))
        XCTAssertEqual(s.state(at: 500).resolution, 32)
    }

    func testLatentsDoNotDependOnSharding() {
        let all = latents(seed: 9, step: 4, indices: Array(0..<8), dim: 5)
        let second = latents(seed: 9, step: 4, indices: Array(4..<8), dim: 5)
        XCTAssertEqual(Array(all.toArray()[20...]), second.toArray())
        XCTAssertNotEqual(latents(seed: 9, step: 5, indices: [0], dim: 5).toArray(), Array(all.toArray()[0..<5]))
    }
}
