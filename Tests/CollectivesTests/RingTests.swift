import Collectives
import DataParallel
import Foundation
import TestSupport
import XCTest
@testable import Tensors

final class RingTests: XCTestCase {
    /// Sum over world sizes 1-5, odd lengths, every codec; the lossy codec within its bound; all
    /// ranks end with identical values.
    func testAllReduceEqualsTheSum() throws {
        for codec in GradientCodec.allCases {
            for n in 1...5 {
                for length in [1, 7, 1000, 65_537, 200_003] {
                    final class Out: @unchecked Sendable { var results = [[Float]](); let lock = NSLock() }
                    let out = Out()
                    let inputs: [[Float]] = (0..<n).map { r in
                        var g = RandomGenerator(seed: UInt64(r), stream: UInt64(length))
                        // Gradient-like: small values with a spread of exponents.
                        return (0..<length).map { _ in g.normal() * 1e-3 }
                    }
                    var want = [Double](repeating: 0, count: length)
                    for v in inputs { for i in 0..<length { want[i] += Double(v[i]) } }
                    try withRing(n, codec: codec, segment: 4096) { ring in
                        var mine = inputs[ring.rank]
                        try mine.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
                        out.lock.lock(); out.results.append(mine); out.lock.unlock()
                    }
                    XCTAssertEqual(out.results.count, n)
                    guard let first = out.results.first else { continue }
                    for r in out.results { XCTAssertTrue(r == first, "\(codec) n=\(n) len=\(length): ranks disagree") }
                    var worst = 0.0
                    for i in 0..<length {
                        let scale = inputs.reduce(0.0) { $0 + Double(Swift.abs($1[i])) }
                        worst = max(worst, Swift.abs(Double(first[i]) - want[i]) / max(scale, 1e-30))
                    }
                    // Lossless: float rounding of n additions. bf16: one rounding per hop.
                    let bound = codec.isLossy ? Double(n) * 2.0 / 256 : 1e-6
                    XCTAssertLessThanOrEqual(worst, bound, "\(codec) n=\(n) len=\(length): relative error \(worst)")
                }
            }
        }
    }

    /// Ranges of a buffer summed in the background (`startReducing`, in an order every rank
    /// shares, mixed with exact `allReduceSum` calls) equal one `allReduce` of the whole buffer
    /// bit for bit, for every codec and world size 2-4, including ranges smaller than the world
    /// (empty chunks) and a range of one float.
    func testRangesSummedInTheBackgroundEqualTheWholeBitForBit() throws {
        for codec in GradientCodec.allCases {
            for n in 2...4 {
                let length = 100_003
                // Cut points shared by every rank, and the order the ranges start in.
                var g = RandomGenerator(seed: 11, stream: UInt64(n))
                var cuts = Set([0, length, 1, 2, 3, 50_000, 50_001])
                while cuts.count < 24 { cuts.insert(Int(g.uniform() * Float(length))) }
                let sorted = cuts.sorted()
                var ranges = zip(sorted, sorted.dropFirst()).map { $0..<$1 }
                for i in ranges.indices.reversed() { ranges.swapAt(i, Int(g.uniform() * Float(i + 1)) % (i + 1)) }
                let inputs: [[Float]] = (0..<n).map { r in
                    var h = RandomGenerator(seed: UInt64(r + 1), stream: 9)
                    return (0..<length).map { _ in h.normal() * 1e-3 }
                }
                final class Out: @unchecked Sendable { var whole = [Int: [Float]](), parts = [Int: [Float]](); let lock = NSLock() }
                let out = Out()
                let frozenRanges = ranges
                try withRing(n, codec: codec, segment: 4096) { ring in
                    var a = inputs[ring.rank], b = inputs[ring.rank]
                    try a.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
                    try b.withUnsafeMutableBufferPointer { buf in
                        for (i, r) in frozenRanges.enumerated() {
                            ring.startReducing(buf, range: r)
                            if i % 7 == 3 {
                                XCTAssertEqual(ring.allReduceSum([Float(ring.rank)]), [Float(n * (n - 1) / 2)])
                            }
                        }
                        try ring.finishReducing()
                    }
                    out.lock.lock(); out.whole[ring.rank] = a; out.parts[ring.rank] = b; out.lock.unlock()
                }
                for r in 0..<n {
                    let w = try XCTUnwrap(out.whole[r]), p = try XCTUnwrap(out.parts[r])
                    XCTAssertTrue(w.map(\.bitPattern) == p.map(\.bitPattern), "\(codec) n=\(n) rank \(r): ranges differ from the whole")
                }
            }
        }
    }

    /// SyncBatchNorm's statistics go the other way round the ring, on the caller's thread: they
    /// do not queue behind gradient ranges still on the wire. Here the ranks interleave the two
    /// differently (rank 0 sums its statistics before starting the gradient ranges, the others
    /// after), which one ordered lane would refuse as an out-of-order collective; each lane keeps
    /// its own order, and both give the right sums.
    func testStatisticsDoNotWaitBehindGradientRanges() throws {
        for n in 2...4 {
            try withRing(n, codec: .none, segment: 4096) { ring in
                var g = [Float](repeating: Float(ring.rank + 1), count: 200_000)
                try g.withUnsafeMutableBufferPointer { buf in
                    if ring.rank == 0 {
                        for k in 0..<3 { XCTAssertEqual(ring.allReduceSum([Float(ring.rank), Float(k)]), [Float(n * (n - 1) / 2), Float(n * k)]) }
                    }
                    ring.startReducing(buf, range: 0..<150_000)
                    ring.startReducing(buf, range: 150_000..<buf.count)
                    if ring.rank != 0 {
                        for k in 0..<3 { XCTAssertEqual(ring.allReduceSum([Float(ring.rank), Float(k)]), [Float(n * (n - 1) / 2), Float(n * k)]) }
                    }
                    try ring.finishReducing()
                }
                XCTAssertTrue(g.allSatisfy { $0 == Float(n * (n + 1) / 2) }, "n=\(n) rank \(ring.rank): wrong gradient sums")
                XCTAssertNil(ring.failure)
            }
        }
    }

    /// SyncBatchNorm's statistics travel uncompressed and exact even when gradients use the
    /// lossy codec.
    func testBatchNormSumsAreExactWithTheLossyCodec() throws {
        try withRing(3, codec: .bf16ShuffleZstd) { ring in
            // 1 + k 2^-20 is exact in float32 but rounds to 1 in bfloat16; the sums are exact too.
            let v: [Float] = [1 + Float(ring.rank + 1) * 0x1p-20, -0.5 - Float(ring.rank) * 0x1p-18]
            XCTAssertEqual(ring.allReduceSum(v), [3 + 6 * 0x1p-20, -1.5 - 3 * 0x1p-18])
            XCTAssertNil(ring.failure)
        }
    }

    /// SyncBatchNorm's per-rank statistics gathered: every rank's slot in rank order, the same
    /// bits as the sum of zero-padded slots (the protocol's fallback), for a tenth of its bytes
    /// or less at N = 4 (each rank sends its own slot, not N of them).
    func testStatisticsGatherEqualsThePaddedSumForFewerBytes() throws {
        final class Padded: BatchNormSynchronizer {
            let ring: Ring
            init(_ ring: Ring) { self.ring = ring }
            var rank: Int { ring.rank }
            var worldSize: Int { ring.worldSize }
            func allReduceSum(_ values: [Float]) -> [Float] { ring.allReduceSum(values) }
        }
        final class S: @unchecked Sendable { var gatherBytes = 0; var paddedBytes = 0 }
        let s = S()
        let m = 2 * 256 + 1
        try withRing(4, codec: .shuffleZstd) { ring in
            var g = RandomGenerator(seed: 7, stream: UInt64(ring.rank))
            let mine = (0..<m).map { _ in g.normal() }
            let before = ring.stats.wireBytes
            let all = ring.allGatherStatistics(mine)
            let mid = ring.stats.wireBytes
            let padded = Padded(ring).allGatherStatistics(mine)
            let after = ring.stats.wireBytes
            XCTAssertEqual(all.count, 4 * m)
            XCTAssertEqual(Array(all[(ring.rank * m)..<((ring.rank + 1) * m)]), mine)
            XCTAssertEqual(all.map(\.bitPattern), padded.map(\.bitPattern))
            XCTAssertNil(ring.failure)
            if ring.rank == 0 { s.gatherBytes = mid - before; s.paddedBytes = after - mid }
        }
        XCTAssertGreaterThanOrEqual(s.gatherBytes, 3 * m * 4)
        XCTAssertLessThan(s.gatherBytes * 3, s.paddedBytes, "gather \(s.gatherBytes) B, padded sum \(s.paddedBytes) B")
    }

    func testAverageAndStats() throws {
        final class S: @unchecked Sendable { var ratio = 0.0; var raw = 0 }
        let s = S()
        try withRing(4, codec: .shuffleZstd) { ring in
            var v = [Float](repeating: Float(ring.rank + 1), count: 10_000)
            try v.withUnsafeMutableBufferPointer { try ring.allReduce($0, average: true) }
            XCTAssertTrue(v.allSatisfy { $0 == 2.5 })
            if ring.rank == 0 { s.ratio = ring.stats.compressionRatio; s.raw = ring.stats.rawBytes }
        }
        // Each rank sends 2 (N - 1) / N of the buffer.
        XCTAssertEqual(s.raw, 2 * 3 * 2500 * 4)
        XCTAssertGreaterThan(s.ratio, 10, "constant data compresses")
    }

    /// The ring's account of its time: gradient and statistics all-reduces counted apart, the
    /// time the caller waited on them, and the summary line gan-worker logs (with TCP_INFO).
    func testTimeOnTheRingIsAccounted() throws {
        final class S: @unchecked Sendable {
            var stats = RingStats(), synchronous = RingStats(); var blocked = 0.0, blockedSynchronous = 0.0; var summary = ""
        }
        let s = S()
        try withRing(2, codec: .none) { ring in
            var v = [Float](repeating: 1, count: 300_000)
            try v.withUnsafeMutableBufferPointer { buf in try ring.allReduceGradients(buf) }
            for _ in 0..<3 { XCTAssertEqual(ring.allReduceSum([1]), [2]) }
            if ring.rank == 0 { s.synchronous = ring.stats; s.blockedSynchronous = ring.blockedSeconds }
            // Ranges started in the background: the collective thread may work on the first
            // before the caller waits, so only finishReducing's wait counts as blocked.
            try v.withUnsafeMutableBufferPointer { buf in
                ring.startReducing(buf, range: 0..<1000)
                ring.startReducing(buf, range: 1000..<buf.count)
                try ring.finishReducing()
            }
            XCTAssertEqual(v[0], 4)
            if ring.rank == 0 { s.stats = ring.stats; s.blocked = ring.blockedSeconds; s.summary = ring.summary(steps: 2) }
        }
        XCTAssertEqual(s.stats.gradientReduces, 3)
        XCTAssertEqual(s.stats.statisticsReduces, 3)
        XCTAssertGreaterThan(s.stats.gradientSeconds, s.synchronous.gradientSeconds)
        XCTAssertGreaterThan(s.stats.statisticsSeconds, 0)
        XCTAssertGreaterThan(s.blocked, s.blockedSynchronous)
        // The caller was blocked through every synchronous collective it ran: from handing the
        // gradient sum over to its end, and through each statistics collective on its own thread.
        XCTAssertGreaterThanOrEqual(s.blockedSynchronous, s.synchronous.gradientSeconds + s.synchronous.statisticsSeconds)
        XCTAssertTrue(s.summary.hasPrefix("ring, per step over 2 step(s): blocked "), s.summary)
        XCTAssertTrue(s.summary.contains("1.5 gradient all-reduce(s)"), s.summary)
        XCTAssertTrue(s.summary.contains("1.5 statistics all-reduce(s)"), s.summary)
        XCTAssertTrue(s.summary.contains("TCP to the right: rtt "), s.summary)
        // The raw codec's frames go straight from and into the buffer: no codec time to report.
        XCTAssertFalse(s.summary.contains("; codec "), s.summary)
    }

    /// SyncBatchNorm's collectives by their place in a step: filed at each `markStep` by their
    /// count per step, reported for the most common count (a step of another count, as the first
    /// one with its own real pass, left out), the time before each measured from the end of the
    /// one before.
    func testStatisticsAreAccountedByTheirPlaceInAStep() throws {
        final class S: @unchecked Sendable { var line: String?; var none: String? = "unset" }
        let s = S()
        try withRing(2, codec: .none) { ring in
            if ring.rank == 0 { s.none = ring.statisticsByPlace() }
            // A first step of 4, then three steps of 2 statistics collectives; on rank 0 the
            // second of each step comes 30 ms after the first ended.
            for _ in 0..<4 { _ = ring.allReduceSum([1, 2]) }
            ring.markStep()
            for _ in 0..<3 {
                _ = ring.allReduceSum([1])
                if ring.rank == 0 { Thread.sleep(forTimeInterval: 0.03) }
                _ = ring.allReduceSum([1])
                ring.markStep()
            }
            ring.markStep()   // a step without statistics: nothing to file
            if ring.rank == 0 { s.line = ring.statisticsByPlace() }
        }
        XCTAssertNil(s.none, "no statistics collectives yet: no line")
        let line = try XCTUnwrap(s.line)
        XCTAssertTrue(line.hasPrefix("statistics all-reduces by place in a step (3 step(s) of 2): ms each took: "), line)
        let parts = line.components(separatedBy: "; ms before each, since the one before ended: ")
        XCTAssertEqual(parts.count, 2, line)
        let before = parts[1].split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(before.count, 2, line)
        // Rank 0 slept 30 ms between the first and the second collective of each step; its first
        // started right after the step before's second ended.
        XCTAssertGreaterThanOrEqual(before[1], 29.0, line)
        XCTAssertLessThan(before[0], 29.0, line)
    }

    /// The codec's share of the gradient time: encoding on the sender thread and decoding (with
    /// the additions) on the collective thread, counted apart, inside the all-reduce's time, and
    /// in the summary line; none on the statistics, which go raw.
    func testTheCodecsTimeIsAccounted() throws {
        final class S: @unchecked Sendable {
            var codec = (encode: 0.0, decode: 0.0), afterStatistics = (encode: 0.0, decode: 0.0)
            var stats = RingStats(), summary = ""
        }
        let s = S()
        try withRing(2, codec: .shuffleZstd) { ring in
            var g = RandomGenerator(seed: UInt64(ring.rank), stream: 3)
            var v = (0..<300_000).map { _ in g.normal() * 1e-3 }
            try v.withUnsafeMutableBufferPointer { try ring.allReduceGradients($0) }
            let codec = ring.codecSeconds
            for _ in 0..<3 { _ = ring.allReduceSum([1, 2, 3]) }
            if ring.rank == 0 {
                s.codec = codec; s.afterStatistics = ring.codecSeconds
                s.stats = ring.stats; s.summary = ring.summary(steps: 1)
            }
        }
        XCTAssertGreaterThan(s.codec.encode, 0)
        XCTAssertGreaterThan(s.codec.decode, 0)
        XCTAssertLessThanOrEqual(s.codec.encode + s.codec.decode, s.stats.gradientSeconds + 0.05)
        XCTAssertEqual(s.afterStatistics.encode, s.codec.encode, "statistics went through the codec")
        XCTAssertEqual(s.afterStatistics.decode, s.codec.decode, "statistics went through the codec")
        XCTAssertTrue(s.summary.contains("; codec "), s.summary)
        XCTAssertTrue(s.summary.contains("(encode "), s.summary)
    }

    func testWrongTokenCannotJoinTheRing() throws {
        // Rank 1 starts forming the ring; an impostor with the wrong token and a client sending
        // garbage reach its listener first and are refused; then the real rank 0 joins and the
        // ring works.
        let l0 = try Listener(host: "127.0.0.1", port: 0), l1 = try Listener(host: "127.0.0.1", port: 0)
        final class Box: @unchecked Sendable { var sums: [[Float]] = []; let lock = NSLock() }
        let box = Box()
        let g = DispatchGroup()
        func start(_ r: Int, _ l: Listener, _ other: UInt16) {
            g.enter()
            Thread {
                defer { g.leave() }
                do {
                    let ring = try Ring.form(rank: r, worldSize: 2, listener: l, rightAddress: ("127.0.0.1", other),
                                             auth: try Authenticator(token: "secret-ring-token-for-tests"), codec: .zstd, timeout: 20)
                    var v: [Float] = [Float(r), 1]
                    try v.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
                    box.lock.lock(); box.sums.append(v); box.lock.unlock()
                } catch { XCTFail("rank \(r): \(error)") }
            }.start()
        }
        start(1, l1, l0.port)
        let impostor = try connect(to: "127.0.0.1", l1.port, within: 5, ioTimeout: 10)
        struct Hello: Codable { var rank: Int; var worldSize: Int; var to: Int }
        XCTAssertThrowsError(try Handshake.join(impostor, claim: .ringHello, Hello(rank: 0, worldSize: 2, to: 1),
                                                auth: try Authenticator(token: "the-wrong-token-0123456"), role: "ring")) { e in
            XCTAssertTrue(e is HandshakeRefused && "\(e)".contains("wrong token"), "\(e)")
        }
        let garbage = try connect(to: "127.0.0.1", l1.port, within: 5, ioTimeout: 10)
        _ = try garbage.receive(.challenge)
        try Array("GET / HTTP/1.0\r\n\r\n and some more bytes".utf8).withUnsafeBytes { try garbage.write([$0]) }
        start(0, l0, l1.port)
        XCTAssertEqual(g.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(box.sums, [[1, 2], [1, 2]])
    }
}
