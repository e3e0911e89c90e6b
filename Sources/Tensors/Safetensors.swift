import Foundation

/// Reading and writing the safetensors format (an 8-byte little-endian header length, a JSON
/// header naming each tensor's dtype, shape and byte range, then the raw little-endian data), the
/// format PyTorch's `safetensors.torch.save_file` writes. Tensors are float32 in memory; in the
/// file they are F32, or I64 where asked (PyTorch's int64 buffers such as BatchNorm's
/// `num_batches_tracked`, so that `load_state_dict(strict=True)` gets the dtype it expects).
/// Reading converts I64, I32 and F64 entries to float32.
public enum Safetensors {
    /// A dtype in the file.
    public enum DType: String, Sendable {
        case f32 = "F32", f64 = "F64", i64 = "I64", i32 = "I32"
        public var size: Int { self == .f32 || self == .i32 ? 4 : 8 }
    }

    /// PyTorch's dtype for a `state_dict` key: I64 for BatchNorm's `num_batches_tracked`, F32
    /// otherwise.
    public static func torchDType(forKey key: String) -> DType {
        key == "num_batches_tracked" || key.hasSuffix(".num_batches_tracked") ? .i64 : .f32
    }

    public struct FormatError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): not a valid safetensors file: \(reason)" }
    }

    /// Largest header accepted (the format's own limit is 100 MB).
    static let maxHeader = 100_000_000

    /// The tensors of `path` by name, and the file's `__metadata__`.
    public static func read(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let f = try readFile(path: path)
        return (f.tensors, f.metadata)
    }

    /// The tensors of `path` by name (as float32), each one's dtype in the file, and the
    /// file's `__metadata__`.
    public static func readFile(path: String) throws
        -> (tensors: [String: Tensor], dtypes: [String: DType], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw FormatError(path: path, reason: "cannot read the file: \(readProblem(path, error))")
        }
        return try decode(data, path: path)
    }

    /// One tensor's place in the file, checked against the data's size.
    private struct Entry { let name: String; let dt: DType; let shape: [Int]; let begin: Int; let end: Int }

    /// Parses a file's bytes (`path` names it in errors).
    public static func decode(_ data: Data, path: String = "<safetensors>") throws
        -> (tensors: [String: Tensor], dtypes: [String: DType], metadata: [String: String]) {
        let data = data.startIndex == 0 ? data : Data(data)   // offsets below count from 0
        let fail = { (r: String) in FormatError(path: path, reason: r) }
        guard data.count >= 8 else { throw fail("\(data.count) bytes is shorter than the 8-byte header length") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(maxHeader), 8 + Int(n) <= data.count else {
            throw fail("header length \(n) does not fit a file of \(data.count) bytes")
        }
        let body = 8 + Int(n)
        guard let json = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<body)),
              let header = json as? [String: Any] else { throw fail("the header is not a JSON object") }
        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] as? [String: Any] { for (k, v) in m { metadata[k] = "\(v)" } }
        // Every entry is checked (checked arithmetic, inside the data, no two sharing bytes)
        // before any tensor is allocated, so what is allocated never exceeds the file's size.
        let entries = try checkedEntries(header, dataBytes: data.count - body, fail)
        var tensors: [String: Tensor] = [:]
        var dtypes: [String: DType] = [:]
        for e in entries {
            tensors[e.name] = read(e, from: data, at: body)
            dtypes[e.name] = e.dt
        }
        return (tensors, dtypes, metadata)
    }

    /// The header's tensor entries, each checked (a known dtype, a shape whose byte count fits
    /// Int, a byte range inside the data of exactly that size), sorted by place, none overlapping.
    private static func checkedEntries(_ header: [String: Any], dataBytes: Int, _ fail: (String) -> FormatError) throws -> [Entry] {
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw fail("entry '\(name)' lacks dtype, shape or data_offsets") }
            guard let dt = DType(rawValue: dtype) else {
                throw fail("tensor '\(name)' has dtype \(dtype); RingGAN reads F32, F64, I64 and I32 (converted to float32)")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)' has a negative dimension in \(shape)") }
            guard let need = Tensor.checkedByteCount(shape, itemSize: dt.size) else {
                throw fail("tensor '\(name)' of shape \(shape) is too large (its byte count overflows)")
            }
            let (b, e) = (offsets[0], offsets[1])
            guard b >= 0, e >= b, e <= dataBytes else {
                throw fail("tensor '\(name)' byte range [\(b), \(e)) lies outside the \(dataBytes) data bytes")
            }
            guard e - b == need else {
                throw fail("tensor '\(name)' of shape \(shape) and dtype \(dtype) needs \(need) bytes, its range has \(e - b)")
            }
            entries.append(Entry(name: name, dt: dt, shape: shape, begin: b, end: e))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(entries, entries.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(a.name)' [\(a.begin), \(a.end)) and '\(b.name)' [\(b.begin), \(b.end)) overlap")
        }
        return entries
    }

    /// A checked entry's values, converted to float32.
    private static func read(_ e: Entry, from data: Data, at body: Int) -> Tensor {
        let count = (e.end - e.begin) / e.dt.size
        let t = Tensor(uninitializedShape: e.shape)
        data.withUnsafeBytes { raw in
            let src = UnsafeRawPointer(raw.baseAddress! + body + e.begin)
            switch e.dt {
            case .f32:
                for i in 0..<count { t.data[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case .f64:
                for i in 0..<count { t.data[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            case .i64:
                for i in 0..<count { t.data[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
            case .i32:
                for i in 0..<count { t.data[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
            }
        }
        return t
    }

    /// Writes `tensors` in order, atomically (a temporary file, fsync, rename): F32, except
    /// the names `dtype` maps to I64 or I32 (values rounded to integers) or F64.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             dtype: (String) -> DType = { _ in .f32 }, to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let types = tensors.map { dtype($0.name) }
        for ((name, t), dt) in zip(tensors, types) {
            precondition(name != "__metadata__" && header[name] == nil, "safetensors: duplicate or reserved name '\(name)'")
            header[name] = ["dtype": dt.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.count * dt.size]] as [String: Any]
            offset += t.count * dt.size
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        for ((_, t), dt) in zip(tensors, types) {
            for i in 0..<t.count {
                switch dt {
                case .f32:
                    var bits = t.data[i].bitPattern.littleEndian
                    withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
                case .f64:
                    var bits = Double(t.data[i]).bitPattern.littleEndian
                    withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
                case .i64:
                    var v = Int64(t.data[i].rounded()).littleEndian
                    withUnsafeBytes(of: &v) { out.append(contentsOf: $0) }
                case .i32:
                    var v = Int32(t.data[i].rounded()).littleEndian
                    withUnsafeBytes(of: &v) { out.append(contentsOf: $0) }
                }
            }
        }
        try AtomicFile.write(out, to: path)
    }
}
