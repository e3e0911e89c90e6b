import Foundation

/// NumPy's `.npy` files (`numpy.save` / `numpy.load`): the magic `\x93NUMPY`, a version, the
/// header length (u16 in version 1.0, u32 in 2.0 and 3.0), a Python dict literal
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (N, C), }` padded with spaces to a multiple
/// of 64 bytes and ended by `\n`, then the data.
///
/// Writes version 1.0, little-endian float32 (`'<f4'`), C order. Reads versions 1.0, 2.0 and 3.0,
/// C order, `'<f4'` as is and `'<f8'` converted to float32. Anything else is an error naming the
/// file and what is wrong.
public enum Npy {
    public static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// The longest header accepted (NumPy's own `max_header_size` is 10,000 bytes; real headers
    /// are under 200).
    public static let maxHeader = 1 << 16

    public struct FormatError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The file's bytes for `t` (shape and values).
    public static func encode(_ t: Tensor) -> Data {
        let shape = t.shape.isEmpty ? "()" : t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data(magic + [1, 0])
        let n = UInt16(header.utf8.count)
        out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        out.append(contentsOf: Array(header.utf8))
        out.reserveCapacity(out.count + t.count * 4)
        for i in 0..<t.count {
            var bits = t.data[i].bitPattern.littleEndian
            withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes `t` atomically.
    public static func write(_ t: Tensor, to path: String) throws {
        try AtomicFile.write(encode(t), to: path)
    }

    public static func read(path: String) throws -> Tensor {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FormatError(path: path, reason: "cannot read the file: \(readProblem(path, error))")
        }
        return try decode(data, path: path)
    }

    /// Parses a file's bytes (`path` names it in errors).
    public static func decode(_ data: Data, path: String = "<npy>") throws -> Tensor {
        let fail = { (r: String) in FormatError(path: path, reason: r) }
        let bytes = [UInt8](data)
        let (header, body) = try headerText(bytes, fail)
        let (descr, itemSize, shape) = try arrayDescription(header, fail)
        // Checked arithmetic: a shape's byte count must fit the file before anything is allocated.
        let have = bytes.count - body
        guard let need = Tensor.checkedByteCount(shape, itemSize: itemSize) else {
            throw fail("shape \(shape) of \(descr) is too large (its byte count overflows)")
        }
        let count = need / itemSize
        guard have == need else {
            throw fail("shape \(shape) of \(descr) needs \(need) data bytes, the file has \(have)")
        }
        let t = Tensor(uninitializedShape: shape)
        bytes.withUnsafeBytes { raw in
            let src = raw.baseAddress! + body
            if itemSize == 4 {
                for i in 0..<count { t.data[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            } else {
                for i in 0..<count {
                    t.data[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            }
        }
        return t
    }

    /// The header's text (after the magic, the version and the header length) and the offset of
    /// the data that follows it.
    private static func headerText(_ bytes: [UInt8], _ fail: (String) -> FormatError) throws -> (String, Int) {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a NumPy .npy file (it does not start with the \\x93NUMPY magic)")
        }
        let major = bytes[6], minor = bytes[7]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail(".npy format version \(major).\(minor) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard headerLength <= maxHeader else {
            throw fail("the header length \(headerLength) exceeds the \(maxHeader)-byte limit")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw fail("the header length \(headerLength) runs past the end of the \(bytes.count)-byte file")
        }
        let headerBytes = bytes[headerStart..<(headerStart + headerLength)]
        guard let header = String(bytes: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("the header is not text")
        }
        return (header, headerStart + headerLength)
    }

    /// The header dictionary's dtype (its descr and item size) and shape; only C-order float32
    /// and float64 arrays are read.
    private static func arrayDescription(_ header: String, _ fail: (String) -> FormatError) throws
        -> (descr: String, itemSize: Int, shape: [Int])
    {
        let dict: [String: PyLiteral]
        do { dict = try PyLiteral.parseDict(header) } catch let e as PyLiteral.ParseError {
            throw fail("cannot parse the header \(header.trimmingCharacters(in: .whitespacesAndNewlines)): \(e.reason)")
        }
        guard case .string(let descr)? = dict["descr"] else { throw fail("the header has no 'descr' string") }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw fail("the header has no 'fortran_order' boolean") }
        guard case .tuple(let dims)? = dict["shape"] else { throw fail("the header has no 'shape' tuple") }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let v) = d, v >= 0 else { throw fail("bad shape entry in \(header)") }
            shape.append(v)
        }
        let itemSize: Int
        switch descr {
        case "<f4": itemSize = 4
        case "<f8": itemSize = 8
        default:
            throw fail("unsupported dtype '\(descr)': RingGAN reads little-endian float32 ('<f4') and float64 ('<f8') arrays")
        }
        if fortran && shape.count > 1 {
            throw fail("the array is stored in Fortran (column-major) order; save it in C order (numpy.ascontiguousarray)")
        }
        return (descr, itemSize, shape)
    }
}

extension Tensor {
    /// `itemSize` times `shape`'s dimensions, multiplied left to right with overflow checks: nil
    /// when any partial product overflows Int or a dimension is negative. (A shape for which
    /// this is not nil is one `Tensor.elementCount` multiplies out without trapping.) The file
    /// parsers check this against the bytes the file actually has before allocating.
    public static func checkedByteCount(_ shape: [Int], itemSize: Int) -> Int? {
        var n = itemSize
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }
}

/// The small subset of Python literals an .npy header uses: strings, integers, True/False,
/// tuples and a dict of them.
enum PyLiteral: Equatable {
    case string(String), int(Int), bool(Bool), tuple([PyLiteral]), none

    struct ParseError: Error { let reason: String }

    static func parseDict(_ s: String) throws -> [String: PyLiteral] {
        var p = Parser(chars: Array(s))
        p.skip()
        try p.expect("{")
        var out: [String: PyLiteral] = [:]
        p.skip()
        while !p.peek("}") {
            guard case .string(let k) = try p.value() else { throw ParseError(reason: "dict keys must be strings") }
            p.skip()
            try p.expect(":")
            out[k] = try p.value()
            p.skip()
            if p.peek(",") { p.i += 1; p.skip() } else if !p.peek("}") { throw ParseError(reason: "expected ',' or '}'") }
        }
        return out
    }

    /// How deep tuples may nest (a shape is one level; recursion beyond this would only
    /// serve to exhaust the stack).
    static let maxDepth = 16

    struct Parser {
        let chars: [Character]
        var i = 0
        var depth = 0

        mutating func skip() { while i < chars.count && chars[i].isWhitespace { i += 1 } }
        func peek(_ c: Character) -> Bool { i < chars.count && chars[i] == c }
        mutating func expect(_ c: Character) throws {
            guard peek(c) else { throw ParseError(reason: "expected '\(c)' at offset \(i)") }
            i += 1
        }

        mutating func value() throws -> PyLiteral {
            skip()
            guard i < chars.count else { throw ParseError(reason: "unexpected end") }
            let c = chars[i]
            if c == "'" || c == "\"" {
                i += 1
                var s = ""
                while i < chars.count && chars[i] != c { s.append(chars[i]); i += 1 }
                try expect(c)
                return .string(s)
            }
            if c == "(" {
                guard depth < PyLiteral.maxDepth else {
                    throw ParseError(reason: "tuples nested deeper than \(PyLiteral.maxDepth) levels")
                }
                depth += 1
                defer { depth -= 1 }
                i += 1
                var items: [PyLiteral] = []
                skip()
                while !peek(")") {
                    items.append(try value())
                    skip()
                    if peek(",") { i += 1; skip() } else if !peek(")") { throw ParseError(reason: "expected ',' or ')'") }
                }
                i += 1
                return .tuple(items)
            }
            var word = ""
            while i < chars.count && (chars[i].isLetter || chars[i].isNumber || chars[i] == "-" || chars[i] == "_") {
                word.append(chars[i]); i += 1
            }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                // numpy writes `3L` in headers from Python 2.
                let digits = word.hasSuffix("L") ? String(word.dropLast()) : word
                guard let v = Int(digits) else { throw ParseError(reason: "unexpected '\(word.isEmpty ? String(c) : word)'") }
                return .int(v)
            }
        }
    }
}
