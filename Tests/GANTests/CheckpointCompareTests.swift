import Datasets
import Foundation
import GAN
import TestSupport
import XCTest
import Tensors

/// `gan verify` and `gan compare`, the judges of the fault matrix (they replaced a Python reader
/// of the checkpoint format): equal files compare identical, one value one ulp off, another step
/// or another config field is found and named, a damaged file is refused.
final class CheckpointCompareTests: XCTestCase {
    func checkpoint(step: Int = 3, values: [Float] = [0.5, -1, 2, 3.25, 0, 1e-3, -7.5], seed: UInt64 = 0) throws -> Checkpoint {
        var c = smallConfig(.dcgan, .bce)
        c.seed = seed
        return Checkpoint(config: c, step: step, sampler: try EpochSampler(count: 48, batchSize: 8, seed: 1),
                          tensors: [("G.w", Tensor(shape: [2, 2], values: Array(values[0..<4]))),
                                    ("D.b", Tensor(shape: [3], values: Array(values[4...])))])
    }

    func testDifferencesAreFoundAndNamed() throws {
        let a = try checkpoint()
        XCTAssertEqual(a.differences(from: try checkpoint()), [])
        var ulp = [Float(0.5), -1, 2, 3.25, 0, 1e-3, -7.5]
        ulp[5] = ulp[5].nextUp
        let d = try checkpoint(values: ulp)
        XCTAssertEqual(a.differences(from: d).count, 1)
        XCTAssertTrue(a.differences(from: d)[0].contains("D.b (1 of 3 values"), "\(a.differences(from: d))")
        XCTAssertEqual(a.differences(from: try checkpoint(step: 4)), ["step 3 vs 4"])
        XCTAssertEqual(a.differences(from: try checkpoint(seed: 9)), ["config differs in [\"seed\"]"])
        XCTAssertEqual(a.differences(from: try checkpoint(seed: 9), ignoring: ["seed"]), [], "an ignored config field is not compared")
        // -0 and +0 are equal floats but different bits: a bit-for-bit judge tells them apart.
        var zero = [Float(0.5), -1, 2, 3.25, 0, 1e-3, -7.5]
        zero[4] = -0.0
        XCTAssertFalse(a.differences(from: try checkpoint(values: zero)).isEmpty)
    }

    func testTheCommandsExitStatusesAndWords() throws {
        let dir = try makeTempDir(self)
        let gan = builtExecutable("gan")
        try checkpoint().write(to: dir + "/a.rgan")
        try checkpoint().write(to: dir + "/b.rgan")
        var ulp = [Float(0.5), -1, 2, 3.25, 0, 1e-3, -7.5]
        ulp[0] = ulp[0].nextUp
        try checkpoint(values: ulp).write(to: dir + "/c.rgan")
        var damaged = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.rgan"))
        damaged[damaged.count - 10] ^= 0xFF
        try damaged.write(to: URL(fileURLWithPath: dir + "/bad.rgan"))

        let same = try runProcess(gan, ["compare", "a.rgan", "b.rgan"], cwd: dir)
        XCTAssertEqual(same.status, 0, same.both)
        XCTAssertTrue(same.stdout.hasPrefix("compare: identical: step 3, 2 tensors (7 values)"), same.both)
        let other = try runProcess(gan, ["compare", "a.rgan", "c.rgan"], cwd: dir)
        XCTAssertEqual(other.status, 1, other.both)
        XCTAssertTrue(other.stdout.contains("G.w (1 of 4 values"), other.both)
        // The same run reading its digits from another path (containers against local processes).
        var moved = try checkpoint()
        moved.config.dataDir = "/elsewhere/mnist-5k"
        try moved.write(to: dir + "/moved.rgan")
        XCTAssertEqual(try runProcess(gan, ["compare", "a.rgan", "moved.rgan"], cwd: dir).status, 1)
        let ignoring = try runProcess(gan, ["compare", "--ignore-config", "dataDir", "a.rgan", "moved.rgan"], cwd: dir)
        XCTAssertEqual(ignoring.status, 0, ignoring.both)
        XCTAssertEqual(try runProcess(gan, ["compare", "--ignore-config", "data", "a.rgan", "moved.rgan"], cwd: dir).status, 64,
                       "a field that does not exist is a usage error")
        let unreadable = try runProcess(gan, ["compare", "a.rgan", "bad.rgan"], cwd: dir)
        XCTAssertEqual(unreadable.status, 2, unreadable.both)
        XCTAssertTrue(unreadable.stdout.contains("bad.rgan"), unreadable.both)
        let ok = try runProcess(gan, ["verify", "a.rgan"], cwd: dir)
        XCTAssertEqual(ok.status, 0, ok.both)
        XCTAssertTrue(ok.stdout.contains("step 3, 2 tensors, 7 values, CRC ok"), ok.both)
        let bad = try runProcess(gan, ["verify", "bad.rgan"], cwd: dir)
        XCTAssertEqual(bad.status, 1, bad.both)
        XCTAssertTrue(bad.stdout.contains("bad.rgan"), bad.both)
    }
}
