import Collectives
import Foundation
import TestSupport
import XCTest
@testable import Tensors

/// `--codec auto`: every rank of a ring times the same probe raw and with the ring's lossless
/// codec, gathers the figures and takes the same decision; whichever it takes, the gradients'
/// sums are the bits a raw ring gives (the choice is between lossless codecs only).
final class CodecChoiceTests: XCTestCase {
    func testTheDecisionIsTheSummedTimes() {
        XCTAssertTrue(CodecChoice.decide(rawSeconds: [0.1, 0.2], codecSeconds: [0.2, 0.2]), "raw faster in sum")
        XCTAssertFalse(CodecChoice.decide(rawSeconds: [0.3, 0.2], codecSeconds: [0.2, 0.2]), "the codec faster in sum")
        XCTAssertFalse(CodecChoice.decide(rawSeconds: [0.2, 0.2], codecSeconds: [0.2, 0.2]), "a tie keeps the codec")
        // One slow rank's figures count as much as they weigh, not as a vote.
        XCTAssertTrue(CodecChoice.decide(rawSeconds: [0.1, 0.1, 0.5], codecSeconds: [0.09, 0.09, 0.9]))
    }

    func testEveryRankChoosesAlikeAndTheSumsAreTheRawRingsBits() throws {
        let n = 3, length = 100_003
        let inputs: [[Float]] = (0..<n).map { r in
            var g = RandomGenerator(seed: UInt64(r), stream: 7)
            return (0..<length).map { _ in g.normal() * 1e-3 }
        }
        final class Out: @unchecked Sendable {
            var chosen: [Int: GradientCodec] = [:], sums: [Int: [Float]] = [:], wire: [Int: Int] = [:]
            let lock = NSLock()
        }
        func run(_ codec: GradientCodec, auto: Bool) throws -> Out {
            let out = Out()
            try withRing(n, codec: codec, segment: 4096) { ring in
                if auto {
                    let choice = try ring.chooseCodec(probeFloats: 1 << 16)
                    XCTAssertEqual(choice.rawSeconds.count, n)
                    XCTAssertEqual(choice.chosen, ring.activeCodec)
                    XCTAssertTrue(choice.description.hasPrefix("codec auto chose \(choice.chosen.rawValue): an all-reduce of 0.3 MB"),
                                  choice.description)
                    // The probe is left out of the ring's account.
                    XCTAssertEqual(ring.stats.wireBytes, 0)
                    XCTAssertEqual(ring.stats.gradientReduces, 0)
                    XCTAssertEqual(ring.codecSeconds.encode, 0)
                    XCTAssertEqual(ring.codecSeconds.decode, 0)
                }
                var mine = inputs[ring.rank]
                try mine.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
                out.lock.lock()
                out.chosen[ring.rank] = ring.activeCodec; out.sums[ring.rank] = mine; out.wire[ring.rank] = ring.stats.wireBytes
                out.lock.unlock()
            }
            return out
        }
        let raw = try run(.none, auto: false)
        let auto = try run(.shuffleZstd, auto: true)
        XCTAssertEqual(Set(auto.chosen.values).count, 1, "the ranks chose differently: \(auto.chosen)")
        for r in 0..<n {
            XCTAssertTrue(auto.sums[r] == raw.sums[r], "rank \(r): the sums differ from the raw ring's")
            XCTAssertGreaterThan(auto.wire[r] ?? 0, 0, "the training all-reduce is accounted")
        }
    }
}
