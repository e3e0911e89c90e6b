import CZlib
import Foundation
import XCTest

/// A fresh temporary folder, removed when the test ends.
func makeTempDir(_ test: XCTestCase) throws -> String {
    let dir = NSTemporaryDirectory() + "ringgan-data-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

/// An IDX file: magic, dimensions, body.
func idxBytes(magic: UInt32, dims: [Int], body: [UInt8]) -> [UInt8] {
    be32(magic) + dims.flatMap { be32(UInt32($0)) } + body
}

/// gzip with zlib's deflate (windowBits 15 + 16), independent of the code under test.
func gzip(_ input: [UInt8]) -> [UInt8] {
    var strm = z_stream()
    precondition(deflateInit2_(&strm, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&strm) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&strm, uLong(input.count))) + 64)
    var input = input
    let produced: Int = input.withUnsafeMutableBufferPointer { inp in
        out.withUnsafeMutableBufferPointer { o in
            strm.next_in = inp.baseAddress
            strm.avail_in = uInt(inp.count)
            strm.next_out = o.baseAddress
            strm.avail_out = uInt(o.count)
            precondition(deflate(&strm, Z_FINISH) == Z_STREAM_END)
            return o.count - Int(strm.avail_out)
        }
    }
    return Array(out[..<produced])
}

/// zlib-format inflate of a whole buffer (for PNG's IDAT), independent of the code under test.
func zlibInflate(_ input: [UInt8], expected: Int) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: expected + 16)
    var outLen = uLongf(out.count)
    let rc = uncompress(&out, &outLen, input, uLong(input.count))
    guard rc == Z_OK else { return nil }
    return Array(out[..<Int(outLen)])
}

func crc32Of(_ bytes: [UInt8]) -> UInt32 { UInt32(crc32(0, bytes, uInt(bytes.count))) }

/// The repository root (two folders above this file's folder).
let repoRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

/// Asserts that `body` throws a `DataError` whose description contains every one of `parts`.
func assertDataError<T>(_ body: @autoclosure () throws -> T, contains parts: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a DataError containing \(parts), but nothing was thrown", file: file, line: line)
    } catch {
        let text = "\(error)"
        for p in parts where !text.contains(p) {
            XCTFail("error \"\(text)\" does not contain \"\(p)\"", file: file, line: line)
        }
    }
}
