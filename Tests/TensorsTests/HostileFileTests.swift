import Foundation
import Tensors
import TestSupport
import XCTest

/// Hand-made .npy and safetensors files that used to crash the readers (issue 9, "a file can
/// crash it"): each must be refused with an error naming the file and the problem.
final class HostileFileTests: XCTestCase {
    func npy(major: UInt8 = 1, header rawHeader: String, data: [UInt8] = []) -> Data {
        var header = rawHeader
        let pre = major == 1 ? 10 : 12
        header += String(repeating: " ", count: (64 - (pre + header.utf8.count + 1) % 64) % 64) + "\n"
        var out = Data(Npy.magic + [major, 0])
        let n = header.utf8.count
        out.append(contentsOf: major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)]
                                          : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24 & 0xFF)])
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    func expectNpyError(_ bytes: Data, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Npy.decode(bytes, path: "hostile.npy"), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains("hostile.npy"), "\(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
        }
    }

    /// Shapes whose element or byte count overflows Int (2^62 x 4, 2^61 float32s).
    func testNpyShapeNear2To62() {
        expectNpyError(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data: [0, 0, 0, 0]),
                       "too large")
        expectNpyError(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693952,), }", data: [0, 0, 0, 0]),
                       "too large")
        expectNpyError(npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 0, 4611686018427387904), }"),
                       "too large")
        // Zero-sized arrays are still fine.
        XCTAssertEqual(try Npy.decode(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }")).shape, [0, 5])
    }

    /// Headers of deeply nested tuples (a version 2.0 header may be 4 GB): bounded recursion,
    /// and a bounded header length.
    func testNpyDeeplyNestedHeader() {
        func deep(_ n: Int) -> String { String(repeating: "(", count: n) + String(repeating: ")", count: n) }
        expectNpyError(npy(major: 2, header: "{'descr': '<f4', 'fortran_order': False, 'shape': \(deep(30_000)), }"), "nested")
        expectNpyError(npy(major: 2, header: "{'descr': '<f4', 'fortran_order': False, 'shape': \(deep(100_000)), }"), "header length")
        let deepDict = "{'shape': " + String(repeating: "(", count: 40) + "1" + String(repeating: ",)", count: 40) + "}"
        expectNpyError(npy(header: deepDict), "nested")
    }

    // MARK: safetensors

    func safetensors(_ header: [String: Any], data: [UInt8]) throws -> Data {
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(contentsOf: data)
        return out
    }

    func expectSafetensorsError(_ bytes: Data, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Safetensors.decode(bytes, path: "hostile.safetensors"), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains("hostile.safetensors"), "\(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
        }
    }

    /// Byte ranges near Int.max: `body + end` used to overflow.
    func testSafetensorsOffsetsNearIntMax() throws {
        let data = [UInt8](repeating: 0, count: 8)
        expectSafetensorsError(try safetensors(["w": ["dtype": "F32", "shape": [2], "data_offsets": [Int.max - 8, Int.max]]], data: data),
                               "outside")
        expectSafetensorsError(try safetensors(["w": ["dtype": "F32", "shape": [2], "data_offsets": [0, Int.max]]], data: data),
                               "outside")
    }

    /// Shapes whose element count overflows ([2^32, 2^32]) or whose byte count does ([2^62]).
    func testSafetensorsOverflowingShapes() throws {
        let data = [UInt8](repeating: 0, count: 8)
        expectSafetensorsError(try safetensors(["w": ["dtype": "F32", "shape": [1 << 32, 1 << 32], "data_offsets": [0, 0]]], data: data),
                               "too large")
        expectSafetensorsError(try safetensors(["w": ["dtype": "F64", "shape": [1 << 62], "data_offsets": [0, 0]]], data: data),
                               "too large")
    }

    /// Entries that share bytes would allocate a tensor per entry from one range: refused.
    func testSafetensorsOverlappingEntries() throws {
        var header: [String: Any] = [:]
        for i in 0..<300 { header["t\(i)"] = ["dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]] }
        expectSafetensorsError(try safetensors(header, data: [UInt8](repeating: 0, count: 4096)), "overlap")
        // Adjacent ranges, in any order in the header, are fine.
        let ok = try safetensors(["b": ["dtype": "F32", "shape": [1], "data_offsets": [4, 8]],
                                  "a": ["dtype": "F32", "shape": [1], "data_offsets": [0, 4]]], data: [0, 0, 128, 63, 0, 0, 0, 64])
        let t = try Safetensors.decode(ok, path: "ok.safetensors").tensors
        XCTAssertEqual(t["a"]?.toArray(), [1])
        XCTAssertEqual(t["b"]?.toArray(), [2])
        // A slice of a larger buffer (indices not starting at 0) reads the same.
        XCTAssertEqual(try Safetensors.decode((Data([9, 9, 9]) + ok).dropFirst(3), path: "slice").tensors["b"]?.toArray(), [2])
    }
}
