import CZlib
import Foundation
import XCTest

// IDX and gzip files made by hand, for the reader's tests.

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
