import Collectives
import Foundation
import TestSupport
import XCTest
@testable import Tensors

/// The collective algorithms over in-memory lanes (no sockets, no threads but the ranks'), and
/// against the TCP ring: the same numbers, bit for bit, since both run the one algorithm.
final class RingAlgorithmTests: XCTestCase {
    private func inputs(_ n: Int, _ length: Int, seed: UInt64) -> [[Float]] {
        (0..<n).map { r in
            var g = RandomGenerator(seed: seed + UInt64(r), stream: UInt64(length))
            return (0..<length).map { _ in g.normal() * 1e-3 }
        }
    }

    /// Runs `body(rank, lane)` for every rank of an in-memory ring on its own thread.
    private func onMemoryRing(_ n: Int, codec: GradientCodec, segment: Int,
                              _ body: @escaping @Sendable (Int, MemoryLane) throws -> Void) {
        let lanes = MemoryLane.ring(size: n, codec: codec, segmentFloats: segment)
        onRankThreads(n, what: "memory ring") { r in try body(r, lanes[r]) }
        withExtendedLifetime(lanes) {}
    }

    final class Results: @unchecked Sendable {
        var byRank: [Int: [Float]] = [:]
        let lock = NSLock()
        func put(_ r: Int, _ v: [Float]) { lock.lock(); byRank[r] = v; lock.unlock() }
    }

    /// Every codec, world sizes 1-5, lengths that leave empty chunks and partial segments: the
    /// in-memory ring gives every rank the bits the TCP ring gives it.
    func testInMemoryAllReduceEqualsTheSocketRingBitForBit() throws {
        for codec in GradientCodec.allCases {
            for n in 1...5 {
                for length in [3, 1000, 10_007] {
                    let ins = inputs(n, length, seed: 40)
                    let memory = Results(), socket = Results()
                    onMemoryRing(n, codec: codec, segment: 1024) { r, lane in
                        var mine = ins[r]
                        let plan = ChunkPlan(n: length, range: 0..<length, ranks: n, segmentFloats: 1024)
                        try mine.withUnsafeMutableBufferPointer {
                            try RingAlgorithms.allReduce($0.baseAddress!, plan, op: 1, average: true, over: lane)
                        }
                        memory.put(r, mine)
                    }
                    if n == 1 {
                        XCTAssertEqual(memory.byRank[0], ins[0], "one rank: the identity")
                        continue
                    }
                    try withRing(n, codec: codec, segment: 1024) { ring in
                        var mine = ins[ring.rank]
                        try mine.withUnsafeMutableBufferPointer { try ring.allReduce($0, average: true) }
                        socket.put(ring.rank, mine)
                    }
                    for r in 0..<n {
                        let a = memory.byRank[r] ?? [], b = socket.byRank[r] ?? []
                        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(codec) n=\(n) length \(length) rank \(r)")
                        XCTAssertEqual(a.map(\.bitPattern), memory.byRank[0]?.map(\.bitPattern), "\(codec) n=\(n): ranks disagree")
                    }
                }
            }
        }
    }

    /// allGather leaves every rank every position's vector, and ranks that disagree on the
    /// collective (a different op number) stop with an error naming the tags.
    func testAllGatherAndTagMismatch() {
        for n in 1...5 {
            let ins = inputs(n, 17, seed: 7)
            let got = Results()
            onMemoryRing(n, codec: .none, segment: 1024) { r, lane in
                var all = [Float](repeating: 0, count: n * 17)
                for i in 0..<17 { all[r * 17 + i] = ins[r][i] }
                try all.withUnsafeMutableBufferPointer { try RingAlgorithms.allGather($0.baseAddress!, 17, op: 3, over: lane) }
                got.put(r, all)
            }
            for r in 0..<n { XCTAssertEqual(got.byRank[r], ins.flatMap { $0 }, "n=\(n) rank \(r)") }
        }
        let lanes = MemoryLane.ring(size: 2, codec: .none, segmentFloats: 1024)
        var v: [Float] = [1, 2]
        v.withUnsafeBufferPointer { lanes[0].post($0.baseAddress!, 2, tag: SegmentTag(op: 5, phase: 0, step: 0, segment: 0)) }
        var out: [Float] = [0, 0]
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer {
            try lanes[1].receive(2, tag: SegmentTag(op: 6, phase: 0, step: 0, segment: 0), into: $0.baseAddress!, add: true)
        }) { XCTAssertTrue("\($0)".contains("out-of-order ring segment"), "\($0)") }
        v[0] = 0
    }

    /// The log2-round all-gather over in-memory lanes (round k's lanes post to rank - 2^k)
    /// leaves every rank every vector, in held order (its own, then rank + 1, ...), for sizes
    /// that are and are not powers of two and vectors spanning several segments.
    func testBruckAllGatherGathersEverythingInLogRounds() {
        for n in 1...9 {
            for m in [1, 5, 700] {
                let ins = inputs(n, m, seed: 21)
                let rounds = RingAlgorithms.rounds(n)
                let lanes = (0..<rounds).map { MemoryLane.ring(size: n, segmentFloats: 1024, step: -(1 << $0)) }
                let got = Results()
                onMemoryRing(n, codec: .none, segment: 1024) { r, _ in
                    var held = [Float](repeating: 0, count: n * m)
                    for i in 0..<m { held[i] = ins[r][i] }
                    try held.withUnsafeMutableBufferPointer {
                        try RingAlgorithms.bruckAllGather($0.baseAddress!, m, op: 9, over: lanes.map { $0[r] })
                    }
                    got.put(r, held)
                }
                for r in 0..<n {
                    let want = (0..<n).flatMap { ins[(r + $0) % n] }
                    XCTAssertEqual(got.byRank[r], want, "n=\(n) m=\(m) rank \(r)")
                }
                withExtendedLifetime(lanes) {}
            }
        }
    }

    /// The one-round all-gather over in-memory lanes (lane d - 1 posts to rank - d) leaves
    /// every rank every vector in held order, the same as the log2-round one, for vectors
    /// spanning several segments too.
    func testDirectAllGatherGathersEverythingInOneRound() {
        for n in 2...9 {
            for m in [1, 5, 2500] {
                let ins = inputs(n, m, seed: 22)
                let lanes = (1..<n).map { MemoryLane.ring(size: n, segmentFloats: 1024, step: -$0) }
                let got = Results()
                onMemoryRing(n, codec: .none, segment: 1024) { r, _ in
                    var held = [Float](repeating: 0, count: n * m)
                    for i in 0..<m { held[i] = ins[r][i] }
                    try held.withUnsafeMutableBufferPointer {
                        try RingAlgorithms.directAllGather($0.baseAddress!, m, op: 10, over: lanes.map { $0[r] })
                    }
                    got.put(r, held)
                }
                for r in 0..<n {
                    let want = (0..<n).flatMap { ins[(r + $0) % n] }
                    XCTAssertEqual(got.byRank[r], want, "n=\(n) m=\(m) rank \(r)")
                }
                withExtendedLifetime(lanes) {}
            }
        }
    }

    /// Statistics summed through far links (in one round with every pair linked, or in log2
    /// rounds) equal those summed round the ring (N - 1 hops), bit for bit: all gather every
    /// rank's vector and add them in rank order, so which algorithm ran never changes a result.
    /// Values chosen so the order of additions matters (large and small terms mixed).
    func testStatisticsInLogRoundsEqualTheRingGatherBitForBit() throws {
        for n in [2, 3, 4, 5, 8] {
            let ins: [[Float]] = (0..<n).map { r in
                var g = RandomGenerator(seed: UInt64(r) + 3, stream: 77)
                return (0..<300).map { i in g.normal() * (i % 3 == 0 ? 1e6 : 1e-3) }
            }
            let viaPairs = Results(), viaLog = Results(), viaRing = Results()
            for (far, pairs, out) in [(true, Ring.everyPairLinkedUpTo, viaPairs), (true, 0, viaLog), (false, 0, viaRing)] {
                try withRing(n, codec: .shuffleZstd, segment: 1024, far: far, everyPairUpTo: pairs) { ring in
                    XCTAssertEqual(ring.gathersInOneRound, far && n > 2 && (pairs > 0 || n == 3), "n=\(n) far \(far) pairs \(pairs)")
                    XCTAssertEqual(ring.gathersInLogRounds, far && n > 2, "n=\(n) far \(far) pairs \(pairs)")
                    var v: [Float] = []
                    for _ in 0..<3 { v = ring.allReduceSum(ins[ring.rank]) }
                    XCTAssertNil(ring.failure)
                    out.put(ring.rank, v)
                }
            }
            var plain = ins[0]
            for r in 1..<n { for i in 0..<plain.count { plain[i] += ins[r][i] } }
            for r in 0..<n {
                for (name, via) in [("one round", viaPairs), ("log2 rounds", viaLog)] {
                    XCTAssertEqual(via.byRank[r]?.map(\.bitPattern), viaRing.byRank[r]?.map(\.bitPattern), "n=\(n) rank \(r) \(name)")
                }
                XCTAssertEqual(viaPairs.byRank[r]?.map(\.bitPattern), plain.map(\.bitPattern), "n=\(n) rank \(r): not the rank-order sum")
            }
        }
    }

    /// The tag's documented layout: segment in bits 0-11, step 12-22, phase 23, op from 24.
    func testSegmentTagLayout() {
        let t = SegmentTag(op: 0x1234, phase: 1, step: 2047, segment: 4097)
        XCTAssertEqual(t.wire & 0xFFF, 1)
        XCTAssertEqual((t.wire >> 12) & 0x7FF, 2047)
        XCTAssertEqual((t.wire >> 23) & 1, 1)
        XCTAssertEqual(t.wire >> 24, 0x1234)
    }

    /// Exact mode's integers: every lossless codec, world sizes 1-5, lengths with empty chunks
    /// and partial segments, values at the ends of Int64's range (the sums wrap, as two's
    /// complement does): the in-memory ring and the TCP ring (`Ring.allReduceExact`, on the
    /// collective thread) give every rank the wrapping sum, whatever order the ring adds in.
    func testIntegerAllReduceIsTheWrappingSumOnEveryRank() throws {
        for codec in GradientCodec.allCases where !codec.isLossy {
            for n in 1...5 {
                for length in [3, 700, 5003] {
                    let ins: [[Int64]] = (0..<n).map { r in
                        var g = RandomGenerator(seed: 7 + UInt64(r), stream: UInt64(length))
                        return (0..<length).map { i in
                            switch i % 4 {
                            case 0: return .max - Int64(r)
                            case 1: return Int64(g.int(below: 1 << 20)) - (1 << 19)
                            case 2: return .min + Int64(r)
                            default: return Int64(bitPattern: UInt64(g.int(below: 1 << 30)) << 33)
                            }
                        }
                    }
                    var expected = [Int64](repeating: 0, count: length)
                    for v in ins { for i in 0..<length { expected[i] &+= v[i] } }
                    final class IntResults: @unchecked Sendable {
                        var byRank: [Int: [Int64]] = [:]
                        let lock = NSLock()
                        func put(_ r: Int, _ v: [Int64]) { lock.lock(); byRank[r] = v; lock.unlock() }
                    }
                    let memory = IntResults(), socket = IntResults()
                    onMemoryRing(n, codec: codec, segment: 1024) { r, lane in
                        var mine = ins[r]
                        try mine.withUnsafeMutableBufferPointer {
                            try RingAlgorithms.allReduceIntegers($0.baseAddress!, RingAlgorithms.integerPlan(count: length, over: lane),
                                                                 op: 1, over: lane)
                        }
                        memory.put(r, mine)
                    }
                    if n > 1 {
                        try withRing(n, codec: codec, segment: 1024) { ring in
                            var mine = ins[ring.rank]
                            try mine.withUnsafeMutableBufferPointer { try ring.allReduceExact($0) }
                            socket.put(ring.rank, mine)
                        }
                    }
                    for r in 0..<n {
                        XCTAssertEqual(memory.byRank[r], expected, "memory ring, \(codec) n=\(n) length \(length) rank \(r)")
                        if n > 1 { XCTAssertEqual(socket.byRank[r], expected, "TCP ring, \(codec) n=\(n) length \(length) rank \(r)") }
                    }
                }
            }
        }
    }

    /// `Ring.allGather`: every rank's vector in rank order, bit for bit (negative zero and a NaN
    /// payload included), over the plain ring and the far links, for vectors shorter and longer
    /// than a segment.
    func testAllGatherReturnsEveryRanksBitsInRankOrder() throws {
        for (far, pairs) in [(false, 0), (true, 0), (true, Ring.everyPairLinkedUpTo)] {
            for length in [5, 2500] {
                let n = 5
                let results = Results()
                let vector: @Sendable (Int) -> [Float] = { r in
                    (0..<length).map { i in i == 0 ? -0.0 : i == 1 ? Float(bitPattern: 0x7FC0_1234) : Float(r * 10_000 + i) }
                }
                try withRing(n, codec: .shuffleZstd, segment: 1024, far: far, everyPairUpTo: pairs) { ring in
                    results.put(ring.rank, try ring.allGather(vector(ring.rank)))
                }
                let expected = (0..<n).flatMap(vector).map(\.bitPattern)
                for r in 0..<n {
                    XCTAssertEqual(results.byRank[r]?.map(\.bitPattern), expected, "far \(far) pairs \(pairs) length \(length) rank \(r)")
                }
            }
        }
    }
}
