import Datasets
import Foundation
import Tensors
import XCTest

final class EpochSamplerTests: XCTestCase {
    func testEpochsArePermutationsWithDropLast() throws {
        var s = try EpochSampler(count: 10, batchSize: 3, seed: 42)
        XCTAssertEqual(s.batchesPerEpoch, 3)
        for epoch in 0..<4 {
            var seen: [Int] = []
            for _ in 0..<3 {
                let b = s.next()
                XCTAssertEqual(b.count, 3)
                XCTAssertEqual(s.epoch, epoch)
                seen += b
            }
            XCTAssertEqual(Set(seen).count, 9, "no repeats within epoch \(epoch)")
            XCTAssertTrue(seen.allSatisfy { (0..<10).contains($0) })
            XCTAssertEqual(s.position, 9)
        }
        _ = s.next()
        XCTAssertEqual(s.epoch, 4)
        XCTAssertEqual(s.position, 3)
    }

    func testEpochUsesTheSeededPermutation() throws {
        var s = try EpochSampler(count: 8, batchSize: 4, seed: 7)
        for e in 0..<3 {
            var rng = RandomGenerator(seed: 7, stream: UInt64(e))
            let p = rng.permutation(8)
            XCTAssertEqual(s.next() + s.next(), p)
        }
    }

    func testDeterministicPerSeed() throws {
        var a = try EpochSampler(count: 100, batchSize: 16, seed: 1)
        var b = try EpochSampler(count: 100, batchSize: 16, seed: 1)
        var c = try EpochSampler(count: 100, batchSize: 16, seed: 2)
        let aa = (0..<20).map { _ in a.next() }
        XCTAssertEqual(aa, (0..<20).map { _ in b.next() })
        XCTAssertNotEqual(aa, (0..<20).map { _ in c.next() })
        // Different epochs give different orders.
        XCTAssertNotEqual(aa[0], aa[6])
    }

    func testCodableRoundTripResumesIdentically() throws {
        var s = try EpochSampler(count: 50, batchSize: 8, seed: 99)
        for _ in 0..<9 { _ = s.next() }          // into epoch 1
        let json = try JSONEncoder().encode(s)
        var r = try JSONDecoder().decode(EpochSampler.self, from: json)
        XCTAssertEqual(r, s)
        XCTAssertEqual(r.epoch, 1)
        XCTAssertEqual(r.position, 24)
        for _ in 0..<30 { XCTAssertEqual(r.next(), s.next()) }
        // Also at an epoch boundary.
        var t = try EpochSampler(count: 50, batchSize: 8, seed: 99)
        for _ in 0..<6 { _ = t.next() }
        var u = try JSONDecoder().decode(EpochSampler.self, from: try JSONEncoder().encode(t))
        XCTAssertEqual(u.next(), t.next())
        XCTAssertEqual(u.epoch, 1)
    }

    /// Decoding makes no permutation: the epoch's order is made when its first batch is taken.
    /// A sampler of 2^24 items (the most a checkpoint may declare) used to be shuffled whole
    /// whenever it was read (a checkpoint, a batch header): 128 MB and seconds each time.
    func testDecodingDoesNotShuffle() throws {
        let big = Data(#"{"count": 16777216, "batchSize": 4, "seed": 3, "epoch": 2, "position": 8}"#.utf8)
        let t0 = Date()
        for _ in 0..<20 { _ = try JSONDecoder().decode(EpochSampler.self, from: big) }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2.0, "decoding shuffles the items")
        // The first batch taken is the decoded epoch's seeded permutation, from the position.
        var s = try JSONDecoder().decode(EpochSampler.self, from: Data(#"{"count": 50, "batchSize": 8, "seed": 99, "epoch": 1, "position": 16}"#.utf8))
        var rng = RandomGenerator(seed: 99, stream: 1)
        XCTAssertEqual(s.next(), Array(rng.permutation(50)[16..<24]))
        // Equality is the state's, whether or not a permutation was made yet.
        var a = try EpochSampler(count: 50, batchSize: 8, seed: 99), b = a
        _ = a.next()
        XCTAssertNotEqual(a, b)
        _ = b.next()
        XCTAssertEqual(a, b)
        XCTAssertEqual(try EpochSampler(count: 50, batchSize: 8, seed: 99, epoch: 1, position: 24), s)
    }

    func testDecodingRejectsInconsistentState() {
        let bad = #"{"count": 10, "batchSize": 3, "seed": 1, "epoch": 0, "position": 11}"#
        XCTAssertThrowsError(try JSONDecoder().decode(EpochSampler.self, from: bad.data(using: .utf8)!))
    }

    func testShardsCoverTheBatch() {
        for n in 1...5 {
            for b in [1, 7, 64, 65] where b >= n {
                let shards = (0..<n).map { EpochSampler.shard(b, rank: $0, worldSize: n) }
                XCTAssertEqual(shards.map { $0.count }.reduce(0, +), b)
                XCTAssertEqual(shards.first!.lowerBound, 0)
                XCTAssertEqual(shards.last!.upperBound, b)
                XCTAssertLessThanOrEqual(shards.map { $0.count }.max()! - shards.map { $0.count }.min()!, 1)
            }
        }
    }

    /// A batch the data set cannot give is an error that names the sizes, not a trap: a user
    /// reaches it with `--batch` (issue 26: `gan train --batch 4501` died of SIGILL here).
    func testABatchLargerThanTheDataSetThrows() {
        XCTAssertThrowsError(try EpochSampler(count: 4500, batchSize: 4501, seed: 0)) { e in
            XCTAssertTrue("\(e)".contains("1...4500") && "\(e)".contains("4501"), "\(e)")
        }
        XCTAssertThrowsError(try EpochSampler(count: 10, batchSize: 0, seed: 0))
        XCTAssertThrowsError(try EpochSampler(count: 0, batchSize: 1, seed: 0))
        XCTAssertThrowsError(try EpochSampler(count: 10, batchSize: 2, seed: 0, epoch: -1, position: 0))
        XCTAssertThrowsError(try EpochSampler(count: 10, batchSize: 2, seed: 0, epoch: 0, position: 11))
        XCTAssertNoThrow(try EpochSampler(count: 10, batchSize: 10, seed: 0))
    }
}
