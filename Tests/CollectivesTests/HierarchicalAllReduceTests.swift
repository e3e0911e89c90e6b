import Collectives
import Foundation
import TestSupport
import XCTest
@testable import Tensors

/// The hierarchical all-reduce (reduce on each host, a ring between hosts, broadcast on each host)
/// gives every rank the bits of the flat ring over the same ranks, whatever the hosts x ranks a
/// host, the length (empty chunks, partial segments), a bucket's range, averaging or a lossy codec:
/// every element is added in the flat ring's order. Over in-memory lanes.
final class HierarchicalAllReduceTests: XCTestCase {
    /// Terms of very different sizes, so that any other order of the additions shows in the bits.
    private func inputs(_ n: Int, _ length: Int) -> [[Float]] {
        (0..<n).map { r in
            var g = RandomGenerator(seed: 90 + UInt64(r), stream: UInt64(length))
            return (0..<length).map { i in g.normal() * (i % 3 == 0 ? 1e6 : i % 3 == 1 ? 1 : 1e-3) }
        }
    }

    final class Results: @unchecked Sendable {
        var byRank: [Int: [Float]] = [:]
        let lock = NSLock()
        func put(_ r: Int, _ v: [Float]) { lock.lock(); byRank[r] = v; lock.unlock() }
    }

    private func flat(_ ins: [[Float]], range: Range<Int>?, average: Bool, codec: GradientCodec, segment: Int) -> Results {
        let n = ins.count, out = Results()
        let lanes = MemoryLane.ring(size: n, codec: codec, segmentFloats: segment)
        onRankThreads(n, what: "flat memory ring") { r in
            var mine = ins[r]
            let plan = ChunkPlan(n: mine.count, range: range ?? 0..<mine.count, ranks: n, segmentFloats: segment)
            try mine.withUnsafeMutableBufferPointer {
                try RingAlgorithms.allReduce($0.baseAddress!, plan, op: 1, average: average, over: lanes[r])
            }
            out.put(r, mine)
        }
        withExtendedLifetime(lanes) {}
        return out
    }

    private func hierarchical(_ ins: [[Float]], hosts H: Int, perHost L: Int, range: Range<Int>?, average: Bool,
                              codec: GradientCodec, segment: Int) -> Results {
        let out = Results()
        // The ring of local rank j's across the hosts, and each host's shifted local rings.
        let inter = (0..<L).map { _ in MemoryLane.ring(size: H, codec: codec, segmentFloats: segment) }
        // Lossless on the host (they carry the ranks' own values), the codec between hosts.
        let local = (0..<H).map { _ in (1..<max(1, L)).map { k in MemoryLane.ring(size: L, codec: .none, segmentFloats: segment, step: k) } }
        onRankThreads(H * L, what: "hierarchical memory lanes") { r in
            let (h, j) = (r / L, r % L)
            var mine = ins[r]
            let plan = ChunkPlan(n: mine.count, range: range ?? 0..<mine.count, ranks: H * L, segmentFloats: segment)
            let lanes = HostLanes(inter: inter[j][h], local: local[h].map { $0[j] })
            try mine.withUnsafeMutableBufferPointer {
                try RingAlgorithms.hierarchicalAllReduce($0.baseAddress!, plan, op: 1, average: average, over: lanes)
            }
            out.put(r, mine)
        }
        withExtendedLifetime((inter, local)) {}
        return out
    }

    func testEqualsTheFlatRingBitForBit() {
        for (H, L) in [(1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (4, 2), (2, 4), (3, 3)] {
            for length in [1, 7, 1000, 20_011] {
                for average in [false, true] {
                    let ins = inputs(H * L, length)
                    let want = flat(ins, range: nil, average: average, codec: .none, segment: 1024)
                    let got = hierarchical(ins, hosts: H, perHost: L, range: nil, average: average, codec: .none, segment: 1024)
                    for r in 0..<(H * L) {
                        XCTAssertTrue(got.byRank[r] == want.byRank[r],
                                      "\(H) hosts x \(L), length \(length), average \(average): rank \(r) differs from the flat ring")
                    }
                }
            }
        }
    }

    /// A bucket (a range of the buffer) and a lossy codec: still the flat ring's bits; and the
    /// order matters (a plain sum in rank order gives other bits here, so the test can fail).
    func testBucketsAndLossyCodecEqualTheFlatRingAndTheOrderShows() {
        let ins = inputs(6, 30_001)
        let cases: [(Range<Int>?, GradientCodec)] = [(5_000..<17_000, .none), (nil, .bf16ShuffleZstd), (0..<29_999, .shuffleZstd)]
        for (range, codec) in cases {
            let want = flat(ins, range: range, average: true, codec: codec, segment: 2048)
            for (H, L) in [(3, 2), (2, 3)] {
                let got = hierarchical(ins, hosts: H, perHost: L, range: range, average: true, codec: codec, segment: 2048)
                for r in 0..<6 { XCTAssertTrue(got.byRank[r] == want.byRank[r], "\(H) x \(L), \(codec), range \(String(describing: range)): rank \(r)") }
            }
        }
        let want = flat(ins, range: nil, average: false, codec: .none, segment: 2048).byRank[0]!
        var inRankOrder = ins[0]
        for r in 1..<6 { for i in 0..<inRankOrder.count { inRankOrder[i] += ins[r][i] } }
        XCTAssertNotEqual(inRankOrder, want, "these inputs do not show the order of the additions")
    }
}
