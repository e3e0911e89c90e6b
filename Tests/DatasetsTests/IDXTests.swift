import Datasets
import Foundation
import TestSupport
import XCTest

final class IDXTests: XCTestCase {
    let pixels: [UInt8] = (0..<(3 * 4 * 5)).map { UInt8($0 * 4) }
    let labels: [UInt8] = [7, 0, 9]

    func testRawAndGzipRoundTrip() throws {
        let dir = try makeTempDir(self)
        let images = idxBytes(magic: 0x803, dims: [3, 4, 5], body: pixels)
        let labs = idxBytes(magic: 0x801, dims: [3], body: labels)
        let transforms: [(String, ([UInt8]) -> [UInt8])] = [("", { $0 }), (".gz", { gzip($0) })]
        for (suffix, transform) in transforms {
            try writeBytes(transform(images), to: "\(dir)/img\(suffix)")
            try writeBytes(transform(labs), to: "\(dir)/lab\(suffix)")
            let a = try IDX.readImages(path: "\(dir)/img\(suffix)")
            XCTAssertEqual(a.count, 3)
            XCTAssertEqual(a.rows, 4)
            XCTAssertEqual(a.cols, 5)
            XCTAssertEqual(a.pixels, pixels)
            XCTAssertEqual(try IDX.readLabels(path: "\(dir)/lab\(suffix)"), labels)
        }
    }

    func testLargeGzipStreamsAcrossChunks() throws {
        // 300 images of 28x28 (235 kB): more than one 64 KiB inflate chunk.
        let dir = try makeTempDir(self)
        let body = (0..<(300 * 784)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }
        try writeBytes(gzip(idxBytes(magic: 0x803, dims: [300, 28, 28], body: body)), to: "\(dir)/big.gz")
        let a = try IDX.readImages(path: "\(dir)/big.gz")
        XCTAssertEqual(a.count, 300)
        XCTAssertEqual(a.pixels, body)
    }

    func testConcatenatedGzipMembers() throws {
        let dir = try makeTempDir(self)
        let all = idxBytes(magic: 0x801, dims: [3], body: labels)
        try writeBytes(gzip(Array(all[..<5])) + gzip(Array(all[5...])), to: "\(dir)/two.gz")
        XCTAssertEqual(try IDX.readLabels(path: "\(dir)/two.gz"), labels)
    }

    func testWrongMagic() throws {
        let dir = try makeTempDir(self)
        try writeBytes(idxBytes(magic: 0x801, dims: [3], body: labels), to: "\(dir)/labels-as-images")
        assertDataError(try IDX.readImages(path: "\(dir)/labels-as-images"),
                        contains: ["labels-as-images", "wrong magic 0x00000801", "expected 0x00000803"])
        try writeBytes(gzip(idxBytes(magic: 0x803, dims: [3, 4, 5], body: pixels)), to: "\(dir)/images-as-labels.gz")
        assertDataError(try IDX.readLabels(path: "\(dir)/images-as-labels.gz"),
                        contains: ["images-as-labels.gz", "wrong magic 0x00000803", "expected 0x00000801"])
    }

    func testTruncated() throws {
        let dir = try makeTempDir(self)
        let short = idxBytes(magic: 0x803, dims: [3, 4, 5], body: Array(pixels.dropLast()))
        try writeBytes(short, to: "\(dir)/short")
        try writeBytes(gzip(short), to: "\(dir)/short.gz")
        for name in ["short", "short.gz"] {
            assertDataError(try IDX.readImages(path: "\(dir)/\(name)"),
                            contains: [name, "truncated: expected 60 bytes of pixels, found 59"])
        }
        try writeBytes([0, 0, 8, 3, 0, 0], to: "\(dir)/header-only")
        assertDataError(try IDX.readImages(path: "\(dir)/header-only"), contains: ["header-only", "truncated"])
        try writeBytes(gzip(Array(be32(0x801) + be32(5) + [1, 2])), to: "\(dir)/labels.gz")
        assertDataError(try IDX.readLabels(path: "\(dir)/labels.gz"),
                        contains: ["labels.gz", "truncated: expected 5 bytes of labels, found 2"])
    }

    func testExtraBytes() throws {
        let dir = try makeTempDir(self)
        let long = idxBytes(magic: 0x801, dims: [3], body: labels + [1, 2])
        try writeBytes(long, to: "\(dir)/long")
        try writeBytes(gzip(long), to: "\(dir)/long.gz")
        for name in ["long", "long.gz"] {
            assertDataError(try IDX.readLabels(path: "\(dir)/\(name)"),
                            contains: [name, "extra bytes: expected 3 bytes of labels, found 5"])
        }
    }

    func testZeroDimension() throws {
        let dir = try makeTempDir(self)
        try writeBytes(idxBytes(magic: 0x803, dims: [0, 28, 28], body: []), to: "\(dir)/empty")
        assertDataError(try IDX.readImages(path: "\(dir)/empty"), contains: ["empty", "dimension 0 is 0"])
    }

    func testCorruptGzip() throws {
        let dir = try makeTempDir(self)
        var packed = gzip(idxBytes(magic: 0x803, dims: [3, 4, 5], body: pixels))
        // Cut off: the stream ends early.
        try writeBytes(Array(packed.prefix(packed.count - 12)), to: "\(dir)/cut.gz")
        assertDataError(try IDX.readImages(path: "\(dir)/cut.gz"), contains: ["cut.gz", "corrupt gzip"])
        // Damaged: flip bytes in the deflate data and the trailer CRC.
        for i in 12..<packed.count { packed[i] ^= 0x5a }
        try writeBytes(packed, to: "\(dir)/bad.gz")
        assertDataError(try IDX.readImages(path: "\(dir)/bad.gz"), contains: ["bad.gz", "corrupt gzip"])
        // A good stream followed by garbage.
        try writeBytes(gzip(idxBytes(magic: 0x801, dims: [3], body: labels)) + [1, 2, 3], to: "\(dir)/trail.gz")
        assertDataError(try IDX.readLabels(path: "\(dir)/trail.gz"), contains: ["trail.gz", "corrupt gzip", "trailing"])
    }

    func testMissingFile() {
        assertDataError(try IDX.readImages(path: "/nonexistent/ringgan/train-images-idx3-ubyte"),
                        contains: ["/nonexistent/ringgan/train-images-idx3-ubyte", "missing file"])
    }

    func testErrorKinds() throws {
        let dir = try makeTempDir(self)
        try writeBytes([1, 2, 3, 4, 5, 6, 7, 8], to: "\(dir)/junk")
        XCTAssertThrowsError(try IDX.readLabels(path: "\(dir)/junk")) { error in
            XCTAssertEqual((error as? DataError)?.kind, .wrongMagic)
            XCTAssertEqual((error as? DataError)?.path, "\(dir)/junk")
        }
    }
}
