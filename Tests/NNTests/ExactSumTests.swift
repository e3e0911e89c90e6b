import NN
import Tensors
import XCTest

final class ExactSumTests: XCTestCase {
    /// Terms whose float sum depends on the order of the additions (large values that cancel,
    /// small ones that float drops or keeps depending on when they come).
    func terms(_ count: Int, length: Int, seed: UInt64) -> [[Float]] {
        var g = RandomGenerator(seed: seed)
        return (0..<count).map { t in
            (0..<length).map { i in
                let big: Float = (t % 2 == 0 ? 1 : -1) * Float(1 << 20)
                return (i % 3 == 0 ? big : 0) + Float(g.normal()) * (i % 5 == 0 ? 1e-3 : 1)
            }
        }
    }

    func exactSum(_ groups: [[[Float]]], ranges: [Range<Int>], length: Int) -> [Float] {
        // Maxima over every term of every group, then each group's integers summed apart (a rank
        // each) and the groups' integers added (the ring), in group order.
        var maxima = [Float](repeating: 0, count: ranges.count)
        for g in groups { for t in g { maxima = ExactSum.combine(maxima, t.withUnsafeBufferPointer { ExactSum.maxima($0, ranges: ranges) }) } }
        let sum = ExactSum(ranges: ranges, maxima: maxima)
        var total = [Int64](repeating: 0, count: length)
        for g in groups {
            var acc = [Int64](repeating: 0, count: length)
            for t in g { t.withUnsafeBufferPointer { x in acc.withUnsafeMutableBufferPointer { sum.accumulate(x, into: $0) } } }
            for i in 0..<length { total[i] &+= acc[i] }
        }
        var out = [Float](repeating: 0, count: length)
        total.withUnsafeBufferPointer { a in out.withUnsafeMutableBufferPointer { sum.result(a, into: $0) } }
        return out
    }

    /// The same terms in any order and any grouping (1, 2, 3 or 8 ranks) give the same bits, where
    /// float addition in those orders does not (checked here: the test data is order-sensitive);
    /// and the exact result is the correctly rounded sum of the rounded terms (against a double
    /// reference within the fixed point's resolution).
    func testOrderAndGroupingDoNotChangeTheBits() {
        let length = 300
        let t = terms(8, length: length, seed: 1)
        let ranges = [0..<100, 100..<250, 250..<300]
        let reference = exactSum([t], ranges: ranges, length: length)
        var floatSums: Set<[UInt32]> = []
        var g = RandomGenerator(seed: 9)
        for trial in 0..<12 {
            var order = Array(t.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, g.int(below: i + 1)) }
            let shuffled = order.map { t[$0] }
            let ranks = [1, 2, 3, 8][trial % 4]
            let groups = (0..<ranks).map { r in Array(shuffled[(shuffled.count * r / ranks)..<(shuffled.count * (r + 1) / ranks)]) }
            let exact = exactSum(groups, ranges: ranges, length: length)
            XCTAssertEqual(exact.map { $0.bitPattern }, reference.map { $0.bitPattern }, "order \(order), \(ranks) rank(s)")
            var f = [Float](repeating: 0, count: length)
            for term in shuffled { for i in 0..<length { f[i] += term[i] } }
            floatSums.insert(f.map { $0.bitPattern })
        }
        XCTAssertGreaterThan(floatSums.count, 1, "the test terms must be ones whose float sum depends on the order")
        for i in 0..<length {
            let d = t.reduce(0.0) { $0 + Double($1[i]) }
            XCTAssertEqual(Double(reference[i]), d, accuracy: Swift.abs(d) * 1e-6 + 1e-6, "element \(i)")
        }
    }

    /// Zeros, tiny values (below the tensor's resolution: rounded the same way on every grouping),
    /// the largest floats (no overflow: 2,048 terms of 3e38 sum to infinity only as float does,
    /// deterministically), NaN and infinity (the range's result is NaN).
    func testEdgesUnderflowOverflowAndNonFinite() {
        let ranges = [0..<2, 2..<4, 4..<6, 6..<8]
        let a: [Float] = [0, 0, 1, 1e-30, 3e38, -3e38, 1, .nan]
        let b: [Float] = [0, -0.0, 1, 1e-30, 3e38, 3e38, .infinity, 2]
        let s1 = exactSum([[a, b]], ranges: ranges, length: 8)
        let s2 = exactSum([[b], [a]], ranges: ranges, length: 8)
        XCTAssertEqual(s1.map { $0.bitPattern }, s2.map { $0.bitPattern })
        XCTAssertEqual(Array(s1[0..<2]), [0, 0])
        XCTAssertEqual(s1[2], 2)
        // 1e-30 is 2^-100 of the range's largest value (1): below the fixed point's resolution.
        XCTAssertEqual(s1[3], 0)
        XCTAssertEqual(s1[4], .infinity)   // 6e38 is past Float's range, as a float sum would be
        XCTAssertEqual(s1[5], 0)
        XCTAssertTrue(s1[6].isNaN && s1[7].isNaN)
        // The most terms allowed, all at the largest value the scale admits: no wrap-around.
        let many = [[Float]](repeating: [Float(1).nextDown, -Float(1).nextDown], count: ExactSum.maxTerms)
        let s = exactSum([many], ranges: [0..<1, 1..<2], length: 2)
        XCTAssertEqual(s[0], Float(ExactSum.maxTerms) * Float(1).nextDown)
        XCTAssertEqual(s[1], -Float(ExactSum.maxTerms) * Float(1).nextDown)
    }

    /// The trainer's path (`keep`: copy and maxima in one pass; `accumulate(terms)`: block by
    /// block) gives the integers and the maxima of term-by-term accumulation.
    func testKeptTermsAccumulateLikeTermByTerm() {
        let length = 5000
        let t = terms(5, length: length, seed: 4)
        let ranges = [0..<1, 1..<3000, 3000..<3000, 3000..<5000]
        var copies = t.map { [Float](repeating: 0, count: $0.count) }
        var maxima = [Float](repeating: 0, count: ranges.count)
        for i in t.indices {
            let m = t[i].withUnsafeBufferPointer { x in copies[i].withUnsafeMutableBufferPointer { ExactSum.keep(x, in: $0, ranges: ranges) } }
            XCTAssertEqual(copies[i], t[i])
            XCTAssertEqual(m, t[i].withUnsafeBufferPointer { ExactSum.maxima($0, ranges: ranges) })
            maxima = ExactSum.combine(maxima, m)
        }
        let sum = ExactSum(ranges: ranges, maxima: maxima)
        var one = [Int64](repeating: 0, count: length), blocked = [Int64](repeating: 0, count: length)
        for x in t { x.withUnsafeBufferPointer { p in one.withUnsafeMutableBufferPointer { sum.accumulate(p, into: $0) } } }
        let pointers = copies.map { c in c.withUnsafeBufferPointer { UnsafePointer($0.baseAddress!) } }
        withExtendedLifetime(copies) { blocked.withUnsafeMutableBufferPointer { sum.accumulate(pointers, into: $0) } }
        XCTAssertEqual(one, blocked)
    }
}
