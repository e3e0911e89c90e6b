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

/// Workers that say they share machines (`gan-worker --node`) reduce gradients by machine, and
/// the run's checkpoints are the bits of the flat ring's run (`--hierarchy off`).
extension ClusterTests {
    func testGradientsByMachineEqualTheFlatRingBitForBit() throws {
        var finals: [String: Data] = [:]
        for hierarchy in ["auto", "off"] {
            let p = port()
            let coord = try launch("gan-coordinator", ["--workers", "4", "--port", "\(p)", "--token-file", "token", "--hierarchy", hierarchy]
                                   + trainArgs(steps: 6, name: "hier-\(hierarchy)"), log: "coord-hier-\(hierarchy).log")
            let ws = try (0..<4).map { r in
                try launch("gan-worker", ["--rank", "\(r)", "--coordinator", "127.0.0.1:\(p)", "--token-file", "token",
                                          "--ring-host", "127.0.0.1", "--node", r < 2 ? "machine-a" : "machine-b"],
                           log: "hier-\(hierarchy)-w\(r).log")
            }
            XCTAssertEqual(wait(coord, within: 180), 0, text("coord-hier-\(hierarchy).log"))
            for (r, w) in ws.enumerated() { XCTAssertEqual(wait(w, within: 30), 0, text("hier-\(hierarchy)-w\(r).log")) }
            finals[hierarchy] = try Data(contentsOf: URL(fileURLWithPath: work + "/runs/hier-\(hierarchy)/checkpoints/step_00000006.rgan"))
        }
        XCTAssertTrue(text("coord-hier-auto.log").contains("gradients reduced by host: 2 hosts x 2 ranks"), text("coord-hier-auto.log"))
        XCTAssertTrue(text("hier-auto-w3.log").contains("gradients by host (2 hosts x 2 ranks)"), text("hier-auto-w3.log"))
        XCTAssertTrue(text("coord-hier-off.log").contains("gradients round the flat ring: --hierarchy off"), text("coord-hier-off.log"))
        XCTAssertTrue(finals["auto"] == finals["off"], "gradients by machine and round the flat ring end with different checkpoints")
    }
}
