import Foundation
import GAN
import TestSupport
import XCTest

/// `gan-coordinator --codec auto`: the workers weigh the lossless codec against raw when the ring
/// forms and say which they chose; the run's checkpoints are the bits of a raw-codec run.
extension ClusterTests {
    func testAutoCodecRunsAsARawRunBitForBit() throws {
        var finals: [String: Data] = [:]
        for codec in ["auto", "none"] {
            let p = port()
            let coord = try launch("gan-coordinator", ["--workers", "2", "--port", "\(p)", "--token-file", "token", "--codec", codec]
                                   + trainArgs(steps: 6, name: "codec-\(codec)"), log: "coord-\(codec).log")
            let ws = try workers(2, port: p, prefix: "\(codec)-w")
            XCTAssertEqual(wait(coord, within: 120), 0, text("coord-\(codec).log"))
            for (r, w) in ws.enumerated() { XCTAssertEqual(wait(w, within: 30), 0, text("\(codec)-w\(r).log")) }
            finals[codec] = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/codec-\(codec)/checkpoints/step_00000006.rgan"))
        }
        // Each rank says what it chose (the same on both: one decision from the same figures).
        let said = (0..<2).map { r in text("auto-w\(r).log").firstMatch(of: #/codec auto chose ([a-z-]+):/#).map { String($0.1) } }
        XCTAssertNotNil(said[0], text("auto-w0.log"))
        XCTAssertEqual(said[0], said[1])
        XCTAssertTrue(finals["auto"] == finals["none"], "--codec auto and --codec none end with different checkpoints")
    }
}
