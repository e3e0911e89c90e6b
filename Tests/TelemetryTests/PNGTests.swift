import CZlib
import Foundation
import Tensors
import Telemetry
import TestSupport
import XCTest

/// zlib-format inflate of a whole buffer (for PNG's IDAT), independent of the code under test.
func zlibInflate(_ input: [UInt8], expected: Int) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: expected + 16)
    var outLen = uLongf(out.count)
    let rc = uncompress(&out, &outLen, input, uLong(input.count))
    guard rc == Z_OK else { return nil }
    return Array(out[..<Int(outLen)])
}

func crc32Of(_ bytes: [UInt8]) -> UInt32 { UInt32(crc32(0, bytes, uInt(bytes.count))) }

/// Parses a PNG with an independent decoder (zlib's `uncompress`), checking every chunk's CRC.
struct DecodedPNG {
    var width = 0, height = 0, bitDepth = 0, colorType = 0
    var chunkTypes: [String] = []
    var pixels: [UInt8] = []
}

func decodePNG(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> DecodedPNG? {
    guard bytes.count > 8, Array(bytes[..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
        XCTFail("no PNG signature", file: file, line: line); return nil
    }
    func u32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
    var png = DecodedPNG()
    var idat: [UInt8] = []
    var i = 8
    while i + 12 <= bytes.count {
        let len = u32(i)
        let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
        let data = Array(bytes[(i + 8)..<(i + 8 + len)])
        XCTAssertEqual(UInt32(u32(i + 8 + len)), crc32Of(Array(bytes[(i + 4)..<(i + 8 + len)])),
                       "CRC of \(type)", file: file, line: line)
        png.chunkTypes.append(type)
        if type == "IHDR" {
            png.width = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
            png.height = Int(data[4]) << 24 | Int(data[5]) << 16 | Int(data[6]) << 8 | Int(data[7])
            png.bitDepth = Int(data[8]); png.colorType = Int(data[9])
            XCTAssertEqual(Array(data[10...]), [0, 0, 0], file: file, line: line)
        }
        if type == "IDAT" { idat += data }
        i += 12 + len
    }
    XCTAssertEqual(i, bytes.count, "bytes after the last chunk", file: file, line: line)
    let channels = png.colorType == 0 ? 1 : 3
    let stride = png.width * channels
    guard let raw = zlibInflate(idat, expected: (stride + 1) * png.height) else {
        XCTFail("IDAT does not inflate", file: file, line: line); return nil
    }
    XCTAssertEqual(raw.count, (stride + 1) * png.height, file: file, line: line)
    for y in 0..<png.height {
        XCTAssertEqual(raw[y * (stride + 1)], 0, "filter type of row \(y)", file: file, line: line)
        png.pixels += raw[(y * (stride + 1) + 1)..<((y + 1) * (stride + 1))]
    }
    return png
}

final class PNGTests: XCTestCase {
    func testGrayRoundTrip() throws {
        let pixels: [UInt8] = (0..<(7 * 5)).map { UInt8($0 * 7) }
        let png = try XCTUnwrap(decodePNG(Array(PNG.encode(width: 7, height: 5, channels: 1, pixels: pixels))))
        XCTAssertEqual(png.chunkTypes, ["IHDR", "IDAT", "IEND"])
        XCTAssertEqual([png.width, png.height, png.bitDepth, png.colorType], [7, 5, 8, 0])
        XCTAssertEqual(png.pixels, pixels)
    }

    func testRGBRoundTripAndWrite() throws {
        let pixels: [UInt8] = (0..<(4 * 3 * 3)).map { UInt8(($0 * 37) % 256) }
        let dir = try makeTempDir(self)
        try PNG.write(width: 4, height: 3, channels: 3, pixels: pixels, to: "\(dir)/rgb.png")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/rgb.png")))
        XCTAssertEqual(Array(bytes[..<8]), PNG.signature)
        let png = try XCTUnwrap(decodePNG(bytes))
        XCTAssertEqual([png.width, png.height, png.bitDepth, png.colorType], [4, 3, 8, 2])
        XCTAssertEqual(png.pixels, pixels)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["rgb.png"], "no temporary left")
    }

    /// Python's zlib and struct, if python3 is there, read it too.
    func testPythonReadsIt() throws {
        let dir = try makeTempDir(self)
        let pixels: [UInt8] = (0..<(6 * 2)).map { UInt8($0 * 20) }
        try PNG.write(width: 6, height: 2, channels: 1, pixels: pixels, to: "\(dir)/g.png")
        let script = """
        import sys, zlib, struct
        b = open(sys.argv[1], 'rb').read(); i = 8; idat = b''; ihdr = None
        while i < len(b):
            n, = struct.unpack('>I', b[i:i+4]); t = b[i+4:i+8]; d = b[i+8:i+8+n]
            assert struct.unpack('>I', b[i+8+n:i+12+n])[0] == zlib.crc32(t + d), t
            if t == b'IHDR': ihdr = struct.unpack('>IIBBBBB', d)
            if t == b'IDAT': idat += d
            i += 12 + n
        w, h = ihdr[0], ihdr[1]; raw = zlib.decompress(idat)
        print(ihdr, list(b''.join(raw[y*(w+1)+1:(y+1)*(w+1)] for y in range(h))))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, "\(dir)/g.png"]
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { throw XCTSkip("python3 not available: \(error)") }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines),
                       "(6, 2, 8, 0, 0, 0, 0) \(pixels.map(Int.init))")
    }
}

final class ImageGridTests: XCTestCase {
    func testGridLayoutLikeMakeGrid() {
        // 10 images of 28x28; image k filled with a value giving byte 10 * (k + 1).
        var values: [Float] = []
        for k in 0..<10 { values += [Float](repeating: Float(10 * (k + 1)) / 255 * 2 - 1, count: 784) }
        let g = imageGrid(Tensor(shape: [10, 1, 28, 28], values: values), nrow: 8)
        XCTAssertEqual(g.height, 2 * (28 + 2) + 2)
        XCTAssertEqual(g.width, 8 * (28 + 2) + 2)
        XCTAssertEqual(g.channels, 1)
        XCTAssertEqual(g.pixels.count, g.width * g.height)
        func at(_ y: Int, _ x: Int) -> UInt8 { g.pixels[y * g.width + x] }
        for k in 0..<10 {
            let top = (k / 8) * 30 + 2, left = (k % 8) * 30 + 2
            XCTAssertEqual(at(top, left), UInt8(10 * (k + 1)), "image \(k)")
            XCTAssertEqual(at(top + 27, left + 27), UInt8(10 * (k + 1)))
            XCTAssertEqual(at(top - 1, left), 0, "padding above image \(k)")
            XCTAssertEqual(at(top, left - 1), 0, "padding left of image \(k)")
            XCTAssertEqual(at(top + 28, left + 28), 0)
        }
        // Cells 10..15 of the second row are empty (padding colour).
        XCTAssertEqual(at(32 + 10, 2 * 30 + 2 + 10), 0)
        XCTAssertEqual(at(32 + 10, 7 * 30 + 2 + 10), 0)
    }

    func testPixelMappingFollowsSaveImageRounding() {
        let t = Tensor(shape: [1, 1, 1, 7], values: [-1, 1, 0, -2, 2, 0.5, -0.999])
        XCTAssertEqual(imageGrid(t, padding: 0).pixels, [0, 255, 128, 0, 255, 191, 0])
        XCTAssertEqual(gridByte(.nan), 0)
        // 0.5 -> (1.5 / 2) * 255 + 0.5 = 191.75 -> 191; -0.999 -> 0.1275 + 0.5 -> 0.
    }

    func testRGBGridAndSave() throws {
        // Two 1x2 RGB images: red/green and blue/white.
        let values: [Float] = [1, -1, /*G*/ -1, 1, /*B*/ -1, -1,
                               -1, 1, /*G*/ -1, 1, /*B*/ 1, 1]
        let t = Tensor(shape: [2, 3, 1, 2], values: values)
        let g = imageGrid(t, nrow: 8, padding: 1)
        XCTAssertEqual([g.width, g.height, g.channels], [2 * 3 + 1, 3, 3])
        func px(_ y: Int, _ x: Int) -> [UInt8] { Array(g.pixels[((y * g.width + x) * 3)..<((y * g.width + x) * 3 + 3)]) }
        XCTAssertEqual(px(1, 1), [255, 0, 0])
        XCTAssertEqual(px(1, 2), [0, 255, 0])
        XCTAssertEqual(px(1, 4), [0, 0, 255])
        XCTAssertEqual(px(1, 5), [255, 255, 255])
        XCTAssertEqual(px(0, 1), [0, 0, 0])
        let dir = try makeTempDir(self)
        try saveImageGrid(t, to: "\(dir)/grid.png")
        let png = try XCTUnwrap(decodePNG(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/grid.png")))))
        XCTAssertEqual([png.width, png.height, png.colorType], [2 * 4 + 2, 1 * 3 + 2, 2])
    }
}
