import Foundation
import GAN
import TestSupport
import TrainingCLI
import XCTest

/// `--lr-decay-from F`: both learning rates constant for the first F of the steps, then linearly
/// down to zero at the last; what the optimizers get at each step, from the flag to the trainer.
final class LRDecayTests: XCTestCase {
    func testScaleIsConstantThenFallsLinearlyToZero() {
        var c = GANConfig()
        c.steps = 100
        XCTAssertEqual(c.lrScale(atStep: 0), 1, "no decay unless asked")
        XCTAssertEqual(c.lrScale(atStep: 99), 1)
        c.lrDecayFrom = 0.5
        XCTAssertEqual(c.lrScale(atStep: 0), 1)
        XCTAssertEqual(c.lrScale(atStep: 49), 1)
        XCTAssertEqual(c.lrScale(atStep: 50), 1)
        XCTAssertEqual(c.lrScale(atStep: 75), 0.5, accuracy: 1e-6)
        XCTAssertEqual(c.lrScale(atStep: 99), 0.02, accuracy: 1e-6, "the last step still learns a little")
        XCTAssertEqual(c.lrScale(atStep: 150), 0, "past the end (a run extended by --resume without --steps) stays at zero")
        c.lrDecayFrom = 0
        XCTAssertEqual(c.lrScale(atStep: 0), 1)
        XCTAssertEqual(c.lrScale(atStep: 50), 0.5, accuracy: 1e-6)
    }

    func testTheOptimizersGetTheScaledRates() throws {
        var c = smallConfig(.dcgan, .bce)
        c.steps = 8; c.lrG = 1e-3; c.lrD = 4e-3; c.lrDecayFrom = 0.5
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(64))
        var seen: [(Float, Float)] = []
        for _ in 0..<8 {
            try trainer.trainStep()
            seen.append((trainer.models.optG.learningRate, trainer.models.optD.learningRate))
        }
        let expected: [Float] = [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
        for (i, (g, d)) in seen.enumerated() {
            XCTAssertEqual(g, 1e-3 * expected[i], accuracy: 1e-9, "G's rate at step \(i)")
            XCTAssertEqual(d, 4e-3 * expected[i], accuracy: 1e-9, "D's rate at step \(i)")
        }
    }

    func testFlagIsValidatedAndKeptInTheConfig() throws {
        XCTAssertEqual(try TrainingFlags.parse(["--lr-decay-from", "0.5"]).config().lrDecayFrom, 0.5)
        XCTAssertNil(try TrainingFlags.parse([]).config().lrDecayFrom)
        for bad in ["1", "-0.1", "nan", "2"] {
            XCTAssertThrowsError(try TrainingFlags.parse(["--lr-decay-from", bad]).config(), bad) { e in
                XCTAssertTrue("\(e)".contains("--lr-decay-from"), "\(e)")
            }
        }
        // A checkpoint's config written before the field existed still reads (nil: constant).
        var c = GANConfig(); c.lrDecayFrom = 0.25
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as! [String: Any]
        XCTAssertEqual(try JSONDecoder().decode(GANConfig.self, from: JSONEncoder().encode(c)).lrDecayFrom, 0.25)
        json.removeValue(forKey: "lrDecayFrom")
        XCTAssertNil(try JSONDecoder().decode(GANConfig.self, from: JSONSerialization.data(withJSONObject: json)).lrDecayFrom)
    }
}
