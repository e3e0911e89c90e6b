import Collectives
import Foundation
import TestSupport
import XCTest
@testable import Tensors

/// The hierarchical all-reduce over real sockets: a ring formed with host links (`HostLayout`)
/// sums gradients by host, and every rank ends with the flat ring's bits, for each codec, whole
/// buffers and background ranges alike; and the coordinator's grouping of workers into hosts.
final class HostLinkTests: XCTestCase {
    final class Results: @unchecked Sendable {
        var byRank: [Int: [Float]] = [:]
        var layouts: [Int: HostLayout?] = [:]
        let lock = NSLock()
    }

    /// Terms of very different sizes, so that another order of the additions shows in the bits.
    private func inputs(_ n: Int, _ length: Int) -> [[Float]] {
        (0..<n).map { r in
            var g = RandomGenerator(seed: 300 + UInt64(r), stream: UInt64(length))
            return (0..<length).map { i in g.normal() * (i % 3 == 0 ? 1e3 : i % 3 == 1 ? 1 : 1e-4) }
        }
    }

    /// Each rank sums `ranges` of its input in the background (in the same order on every rank),
    /// then the whole buffer once more with `average`; returns every rank's result.
    private func run(_ ins: [[Float]], codec: GradientCodec, hosts: HostLayout?, ranges: [Range<Int>]) throws -> Results {
        let out = Results()
        try withRing(ins.count, codec: codec, segment: 4096, hosts: hosts) { ring in
            var mine = ins[ring.rank]
            try mine.withUnsafeMutableBufferPointer { b in
                for r in ranges { ring.startReducing(b, range: r) }
                try ring.finishReducing()
                try ring.allReduce(b, average: true)
            }
            out.lock.lock(); out.byRank[ring.rank] = mine; out.layouts[ring.rank] = ring.hostLayout; out.lock.unlock()
        }
        return out
    }

    func testHostLinksGiveTheFlatRingsBitsOverSockets() throws {
        let length = 30_011
        let ranges = [0..<7, 7..<12_000, 12_000..<12_001, 12_001..<length]
        for (H, L) in [(2, 2), (3, 2), (2, 3)] {
            for codec in GradientCodec.allCases {
                let ins = inputs(H * L, length)
                let flat = try run(ins, codec: codec, hosts: nil, ranges: ranges)
                let layout = HostLayout(hosts: H, perHost: L)
                let byHost = try run(ins, codec: codec, hosts: layout, ranges: ranges)
                for r in 0..<(H * L) {
                    XCTAssertEqual(byHost.layouts[r], layout, "rank \(r) did not form the host links")
                    XCTAssertNotNil(flat.byRank[r])
                    XCTAssertTrue(byHost.byRank[r] == flat.byRank[r], "\(layout), \(codec): rank \(r) differs from the flat ring")
                }
            }
        }
    }

    /// The sums' order shows in the bits here: adding the ranks in another order (host by host,
    /// then the hosts) gives other values, so the test above could fail.
    func testAnotherOrderGivesOtherBits() {
        let ins = inputs(4, 3000)
        var byHostFirst = [Float](repeating: 0, count: 3000), inOrder = byHostFirst
        for i in 0..<3000 {
            byHostFirst[i] = (ins[0][i] + ins[2][i]) + (ins[1][i] + ins[3][i])
            inOrder[i] = ((ins[0][i] + ins[1][i]) + ins[2][i]) + ins[3][i]
        }
        XCTAssertFalse(byHostFirst == inOrder)
    }

    func testGrouping() {
        XCTAssertEqual(HostLayout.grouping(["a", "a", "b", "b"]).layout, HostLayout(hosts: 2, perHost: 2))
        XCTAssertEqual(HostLayout.grouping(["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.2"]).layout,
                       HostLayout(hosts: 2, perHost: 3))
        XCTAssertEqual(HostLayout.grouping(Array(repeating: "x", count: 4)).why, "all 4 ranks are on one host")
        XCTAssertNil(HostLayout.grouping(["a", "b", "c"]).layout)
        XCTAssertTrue(HostLayout.grouping(["a", "a", "b"]).why.contains("different numbers"))
        XCTAssertTrue(HostLayout.grouping(["a", "b", "a", "b"]).why.contains("not consecutive (rank 1 is on b, not a)"),
                      HostLayout.grouping(["a", "b", "a", "b"]).why)
        let l = HostLayout(hosts: 3, perHost: 2)
        XCTAssertEqual((0..<6).map { l.interTo($0) }, [2, 3, 4, 5, 0, 1])
        XCTAssertEqual((0..<6).map { l.interFrom($0) }, [4, 5, 0, 1, 2, 3])
        let m = HostLayout(hosts: 2, perHost: 3)
        XCTAssertEqual((0..<6).map { m.localTo($0, 1) }, [1, 2, 0, 4, 5, 3])
        XCTAssertEqual((0..<6).map { m.localFrom($0, 2) }, [1, 2, 0, 4, 5, 3])
    }
}
