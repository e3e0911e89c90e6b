import Datasets
import Foundation
import GAN
import NN
import TestSupport
import XCTest
import Tensors

/// Hand-made checkpoints with valid checksums that used to crash or exhaust memory (issue 9,
/// "a file can crash it"): each must be refused with an error naming the file and the problem.
final class HostileCheckpointTests: XCTestCase {
    /// zlib's CRC-32 (the checkpoint trailer).
    static func crc32(_ d: Data) -> UInt32 {
        var table = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[i] = c
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for b in d { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// A small valid checkpoint: the test config, one tensor `x` of `floats` values.
    func plainCheckpoint(floats: Int = 16) -> Checkpoint {
        Checkpoint(config: smallConfig(.dcgan, .bce), step: 3, sampler: try! EpochSampler(count: 48, batchSize: 8, seed: 1),
                   tensors: [("x", Tensor(shape: [floats], values: (0..<floats).map(Float.init)))])
    }

    /// `data` with its header JSON edited and the CRC-32 recomputed (a valid checksum).
    func rewrite(_ data: Data, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        let hlen = Int(data[12..<20].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try JSONSerialization.jsonObject(with: data.subdata(in: 20..<(20 + hlen))) as! [String: Any]
        edit(&header)
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var out = Data(data.prefix(12))
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(data.subdata(in: (20 + hlen)..<(data.count - 4)))
        withUnsafeBytes(of: Self.crc32(out).littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    func editEntries(_ data: Data, _ edit: @escaping (inout [[String: Any]]) -> Void) throws -> Data {
        try rewrite(data) { h in
            var entries = h["tensors"] as! [[String: Any]]
            edit(&entries)
            h["tensors"] = entries
        }
    }

    func expectError(_ data: Data, _ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try makeTempDir(self)
        let p = dir + "/hostile.rgan"
        try data.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Checkpoint.read(path: p), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains("hostile.rgan"), "\(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
        }
    }

    func testTheRewriteHelperKeepsAValidFile() throws {
        let good = try plainCheckpoint().encode()
        let same = try rewrite(good) { _ in }
        XCTAssertEqual(try Checkpoint.decode(same, path: "same.rgan").tensor("x")?.toArray(), (0..<16).map(Float.init))
        XCTAssertEqual(try Checkpoint.decode((Data([1, 2]) + same).dropFirst(2), path: "slice.rgan").tensor("x")?.toArray(),
                       (0..<16).map(Float.init))
    }

    /// Shapes whose element count overflows Int.
    func testOverflowingShape() throws {
        let good = try plainCheckpoint().encode()
        try expectError(try editEntries(good) { $0[0]["shape"] = [1 << 32, 1 << 32] }, "too large")
        try expectError(try editEntries(good) { $0[0]["shape"] = [1 << 62, 4] }, "too large")
    }

    /// Offsets near Int.max: `offset + count` used to overflow.
    func testOverflowingOffset() throws {
        let good = try plainCheckpoint().encode()
        try expectError(try editEntries(good) { $0[0]["offset"] = Int.max - 2 }, "outside the data section")
        try expectError(try editEntries(good) { $0[0]["offset"] = Int.max / 4 + 1 }, "outside the data section")
    }

    /// 300 entries over the same bytes would allocate 300 tensors from one range.
    func testOverlappingEntries() throws {
        let good = try plainCheckpoint(floats: 1 << 20).encode()   // a 4 MB file; 300 copies would be 1.2 GB
        let hostile = try editEntries(good) { e in
            e = (0..<300).map { ["name": "x\($0)", "shape": [1 << 20], "offset": 0] }
        }
        try expectError(hostile, "overlap")
    }

    /// A NaN (or infinite, negative, fractional) optimizer step used to trap in `Int(_:)`.
    func testNaNOptimizerStep() throws {
        let c = smallConfig(.dcgan, .bce)
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
        let dir = try makeTempDir(self)
        for bad: Float in [.nan, .infinity, -1, 1e30, 2.5] {
            let ck = Checkpoint(trainer: trainer)
            ck.tensor("optG.step")!.data[0] = bad
            let p = dir + "/hostile.rgan"
            try ck.write(to: p)
            XCTAssertThrowsError(try Checkpoint.read(path: p).restore(into: GANModels(config: c), path: p), "\(bad)") { e in
                XCTAssertTrue("\(e)".contains("hostile.rgan"), "\(e)")
                XCTAssertTrue("\(e)".contains("step"), "\(e)")
            }
        }
    }

    /// A config no model can be built from (a negative latent size, absurd widths) is refused
    /// when the checkpoint is read, not when the model is built from it.
    func testInvalidConfig() throws {
        var ck = plainCheckpoint()
        ck.config.latentDim = -5
        try expectError(try ck.encode(), "latent")
        ck = plainCheckpoint()
        ck.config.ngf = 1 << 40
        try expectError(try ck.encode(), "ngf")
        ck = plainCheckpoint()
        ck.config.batchSize = 1 << 40
        try expectError(try ck.encode(), "batch")
        ck = plainCheckpoint()
        ck.step = -1
        try expectError(try ck.encode(), "step")
    }

    /// A sampler of 2e9 items would allocate a 16 GB permutation.
    func testHugeSamplerCount() throws {
        let good = try plainCheckpoint().encode()
        try expectError(try rewrite(good) { h in
            var s = h["sampler"] as! [String: Any]
            s["count"] = 2_000_000_000
            h["sampler"] = s
        }, "sampler")
    }
}
