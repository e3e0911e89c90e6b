import Foundation
import GAN
import TestSupport
import XCTest
@testable import Cluster

/// Messages from a coordinator that used to crash the worker (issue 9, "a file can crash it"):
/// each must be refused with an error naming the peer and the problem.
final class HostileMessageTests: XCTestCase {
    func payload(_ header: [String: Any], pixels: Int) throws -> [UInt8] {
        let h = Array(try JSONSerialization.data(withJSONObject: header))
        var out = [UInt8]()
        withUnsafeBytes(of: UInt32(h.count).littleEndian) { out += $0 }
        return out + h + [UInt8](repeating: 7, count: pixels)
    }

    func expectError(_ header: [String: Any], pixels: Int, _ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try payload(header, pixels: pixels)
        XCTAssertThrowsError(try BatchHeader.unpack(p, peer: "coordinator 10.0.0.1:7000", batchSize: 8), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains("coordinator 10.0.0.1:7000"), "\(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
        }
    }

    /// A height of 2^62: `count * height * width` used to overflow (a trap in the reader thread).
    func testBatchHeaderHeight2To62() throws {
        try expectError(["step": 1, "iteration": 0, "positions": [0, 1], "height": 1 << 62, "width": 4], pixels: 32, "height")
        try expectError(["step": 1, "iteration": 0, "positions": [0, 1], "height": 4, "width": -4], pixels: 32, "width")
        try expectError(["step": 1, "iteration": 0, "positions": [0, 1], "height": 0, "width": 0], pixels: 0, "height")
        // Positions outside the global batch, repeated, or more than it holds.
        try expectError(["step": 1, "iteration": 0, "positions": [0, 9], "height": 2, "width": 2], pixels: 8, "position")
        try expectError(["step": 1, "iteration": 0, "positions": [1, 1], "height": 2, "width": 2], pixels: 8, "position")
        try expectError(["step": 1, "iteration": 0, "positions": [0, 1], "height": 2, "width": 2], pixels: 9, "bytes")
        // A sampler of 2e9 items (a 16 GB permutation) in the header.
        try expectError(["step": 1, "iteration": 0, "positions": [0], "height": 2, "width": 2,
                         "sampler": ["count": 2_000_000_000, "batchSize": 8, "seed": 0, "epoch": 0, "position": 0]], pixels: 4, "sampler")
        // A good one.
        let (h, px) = try BatchHeader.unpack(try payload(["step": 1, "iteration": 0, "positions": [0, 1], "height": 2, "width": 2], pixels: 8),
                                             peer: "coordinator", batchSize: 8)
        XCTAssertEqual(h.positions, [0, 1])
        XCTAssertEqual(px.count, 8)
    }

    /// A start message whose config no model can be built from is refused before building one.
    func testStartMessageConfigIsValidated() throws {
        func start(_ edit: (inout StartMessage) -> Void) -> StartMessage {
            var c = GANConfig()
            c.imageSize = 16
            var s = StartMessage(config: c, rank: 0, worldSize: 2, rightHost: "127.0.0.1", rightPort: 7001, runDir: "runs/x",
                                 sampleEvery: 0, checkpointEvery: 0, keep: 1, resume: nil, codec: .none, level: 0, checksumEvery: 10,
                                 timeout: 15, heartbeat: 1)
            edit(&s)
            return s
        }
        XCTAssertNoThrow(try start { _ in }.check(peer: "coordinator"))
        for (edit, needle) in [({ (s: inout StartMessage) in s.config.latentDim = -5 }, "latent"),
                               ({ $0.config.ngf = 1 << 40 }, "ngf"),
                               ({ $0.config.batchSize = 0 }, "batch"),
                               ({ $0.rank = 2 }, "rank"),
                               ({ $0.worldSize = 0 }, "world"),
                               ({ $0.timeout = -1 }, "timeout")] as [((inout StartMessage) -> Void, String)] {
            XCTAssertThrowsError(try start(edit).check(peer: "coordinator 10.0.0.1:7000")) { e in
                XCTAssertTrue("\(e)".contains("coordinator 10.0.0.1:7000"), "\(e)")
                XCTAssertTrue("\(e)".contains(needle), "\(e)")
            }
        }
    }
}
