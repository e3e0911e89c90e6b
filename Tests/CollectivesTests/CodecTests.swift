import CKernels
import Collectives
import Foundation
import XCTest

/// The gradient codecs on their own: exact round trips of every kind of float, the choice of
/// which byte planes go through zstd, and clear errors for payloads that are not a segment.
final class CodecTests: XCTestCase {
    /// Gradient-like values: random signs and mantissas, exponents within 16 binades.
    private func gradients(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let bits = UInt32(truncatingIfNeeded: s >> 32)
            let exponent = UInt32(110 + (s >> 20) & 15)
            return Float(bitPattern: (bits & 0x807F_FFFF) | exponent << 23)
        }
    }

    private func roundTrip(_ codec: GradientCodec, _ x: [Float]) throws -> (out: [Float], bytes: [UInt8]) {
        let coder = SegmentCoder(codec: codec)
        var bytes: [UInt8] = []
        x.withUnsafeBufferPointer { coder.encode($0.baseAddress!, x.count, into: &bytes) }
        var out = [Float](repeating: 7, count: x.count)
        try bytes.withUnsafeBytes { b in
            try out.withUnsafeMutableBufferPointer { try coder.decode(b, x.count, into: $0.baseAddress!, add: false, peer: "test") }
        }
        return (out, bytes)
    }

    /// Lossless codecs give back every bit (NaN payloads, signed zeros, infinities,
    /// subnormals included); the lossy one gives back exactly `quantize`'s rounding.
    /// Both variants of the byte-plane loops (SSE2 and, where the CPU has it, AVX2).
    func testEveryCodecRoundTripsEveryKindOfValue() throws {
        defer { _ = rg_planes_select(1) }
        for avx2: Int32 in [0, 1] where rg_planes_select(avx2) == 1 {
            try roundTripsEveryKindOfValue(variant: avx2 == 1 ? "avx2" : "baseline")
        }
    }

    private func roundTripsEveryKindOfValue(variant: String) throws {
        let special: [Float] = [0, -0, .infinity, -.infinity, .nan, Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFF80_0001),
                                .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, 1, -1, 3e-39,
                                // bfloat16 rounding: ties to even (down, up), just above a tie
                                Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0xBF80_8001)]
        for codec in GradientCodec.allCases {
            for n in [0, 1, 13, 63, 64, 65, 1023, 1024, 4097, 70_000] {
                var kinds: [(String, [Float])] = [("gradients", gradients(n, seed: UInt64(n) + 1)),
                                                  ("zeros", [Float](repeating: 0, count: n)),
                                                  ("constant", [Float](repeating: 0.375, count: n))]
                var mixed = gradients(n, seed: 99)
                for i in 0..<(n / 2) { mixed[i] = 0 }
                for i in 0..<min(n, special.count) { mixed[n - 1 - i] = special[i] }
                kinds.append(("half zeros, specials", mixed))
                for (kind, x) in kinds {
                    let (out, _) = try roundTrip(codec, x)
                    var want = x
                    want.withUnsafeMutableBufferPointer { SegmentCoder.quantize($0.baseAddress!, n, codec) }
                    XCTAssertTrue(out.map(\.bitPattern) == want.map(\.bitPattern), "\(variant) \(codec) n=\(n) \(kind): not bit for bit")
                }
            }
        }
    }

    /// Adding into place (reduce-scatter) equals decoding and adding, in both variants.
    func testDecodeAddsIntoPlace() throws {
        defer { _ = rg_planes_select(1) }
        for avx2: Int32 in [0, 1] where rg_planes_select(avx2) == 1 {
            try decodeAddsIntoPlace(variant: avx2 == 1 ? "avx2" : "baseline")
        }
    }

    private func decodeAddsIntoPlace(variant: String) throws {
        var x = gradients(5000, seed: 3)
        let base = gradients(5000, seed: 4)
        x[17] = .nan; x[18] = -0.0; x[19] = .infinity
        for codec in GradientCodec.allCases {
            let coder = SegmentCoder(codec: codec)
            var bytes: [UInt8] = []
            x.withUnsafeBufferPointer { coder.encode($0.baseAddress!, x.count, into: &bytes) }
            var acc = base
            try bytes.withUnsafeBytes { b in
                try acc.withUnsafeMutableBufferPointer { try coder.decode(b, x.count, into: $0.baseAddress!, add: true, peer: "test") }
            }
            var q = x
            q.withUnsafeMutableBufferPointer { SegmentCoder.quantize($0.baseAddress!, $0.count, codec) }
            XCTAssertTrue(acc.map(\.bitPattern) == zip(base, q).map { ($0 + $1).bitPattern }, "\(variant) \(codec)")
        }
    }

    /// Gradients' mantissa bytes travel raw (zstd gains nothing on them); zeros and constants
    /// are compressed in every plane. The exponent's plane is compressed either way.
    func testOnlyPlanesThatCompressGoThroughZstd() throws {
        let n = 1 << 16
        let (_, g) = try roundTrip(.shuffleZstd, gradients(n, seed: 5))
        XCTAssertEqual(g[0], 0b1000, "gradients: only the exponent's plane through zstd")
        XCTAssertGreaterThan(g.count, 3 * n, "three raw planes")
        XCTAssertLessThan(g.count, 4 * n)
        let (_, z) = try roundTrip(.shuffleZstd, [Float](repeating: 0, count: n))
        XCTAssertEqual(z[0], 0b1111, "zeros: every plane through zstd")
        XCTAssertLessThan(z.count, 200, "zeros compress")
        let (_, b) = try roundTrip(.bf16ShuffleZstd, gradients(n, seed: 6))
        XCTAssertEqual(b[0], 0b10)
        let (_, bz) = try roundTrip(.bf16ShuffleZstd, [Float](repeating: 1.5, count: n))
        XCTAssertEqual(bz[0], 0b11)
        XCTAssertLessThan(bz.count, 200)
    }

    /// A payload that is not a segment of `n` values is refused with an error naming the
    /// peer, never a crash or a wrong result: cut short, grown, a bad plane mask, a length that
    /// runs past the end, a damaged zstd frame.
    func testMalformedSegmentsAreRefused() throws {
        let n = 4096
        for codec in GradientCodec.allCases where codec != .none {
            for x in [gradients(n, seed: 8), [Float](repeating: 0, count: n)] {
                let coder = SegmentCoder(codec: codec)
                var good: [UInt8] = []
                x.withUnsafeBufferPointer { coder.encode($0.baseAddress!, n, into: &good) }
                var bad: [(String, [UInt8])] = [("empty", []), ("cut by one", Array(good.dropLast())),
                                                ("cut in half", Array(good.prefix(good.count / 2))),
                                                ("a byte more", good + [0]), ("mask 0xFF", [0xFF] + good.dropFirst())]
                // A length field that runs past the end: the first zstd plane's, right after the raw planes.
                let rawPlanes = (0..<8).filter { good[0] & (1 << $0) == 0 }.count
                let planes = codec == .zstd ? 1 : (codec.isLossy ? 2 : 4)
                let lengthAt = 1 + (rawPlanes - (8 - planes)) * (codec == .zstd ? n * 4 : n)
                var long = good
                long[lengthAt + 3] = 0x7F
                bad.append(("length past the end", long))
                var flipped = good
                flipped[lengthAt + 4] ^= 0xFF   // the zstd frame's magic number
                bad.append(("damaged zstd frame", flipped))
                for (what, payload) in bad {
                    var out = [Float](repeating: 0, count: n)
                    XCTAssertThrowsError(try payload.withUnsafeBytes { b in
                        try out.withUnsafeMutableBufferPointer { try coder.decode(b, n, into: $0.baseAddress!, add: false, peer: "10.0.0.7:9000") }
                    }, "\(codec) \(what)") { error in
                        XCTAssertTrue("\(error)".contains("10.0.0.7:9000"), "\(codec) \(what): \(error)")
                    }
                }
            }
        }
    }
}
