import CZlib
import Datasets
import Foundation
import NN
import Tensors

/// A training checkpoint: one versioned file holding the config, the step, the data sampler's
/// position, G and D (parameters and buffers: BatchNorm running stats, spectral-norm u and v)
/// and both optimizers' state. Layout:
///
///     "RINGGAN\0" | u32 version | u64 header length | header JSON | float32 data | u32 CRC-32
///
/// all little-endian; the CRC covers everything before it. Written atomically (temporary file,
/// fsync, rename). All randomness of a step derives from (seed, step, sample), so restoring
/// these is enough for a resumed run to continue bit-identically.
public struct Checkpoint {
    public static let magic: [UInt8] = Array("RINGGAN\0".utf8)
    public static let version: UInt32 = 1
    public static let fileExtension = "rgan"

    public var config: GANConfig
    public var step: Int
    public var sampler: EpochSampler
    public var tensors: [(name: String, tensor: Tensor)]

    public struct Error: Swift.Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    struct Header: Codable {
        var format = "ringgan-checkpoint"
        var config: GANConfig
        var step: Int
        var sampler: EpochSampler
        var tensors: [Entry]
        struct Entry: Codable { var name: String; var shape: [Int]; var offset: Int }
    }

    public init(config: GANConfig, step: Int, sampler: EpochSampler, tensors: [(name: String, tensor: Tensor)]) {
        self.config = config
        self.step = step
        self.sampler = sampler
        self.tensors = tensors
    }

    /// Captures the state of `trainer` (values are copied).
    public init(trainer: GANTrainer) {
        let m = trainer.models
        var ts: [(String, Tensor)] = []
        ts += m.generator.stateDict(prefix: "G.").map { ($0.0, $0.1.copy()) }
        ts += m.discriminator.stateDict(prefix: "D.").map { ($0.0, $0.1.copy()) }
        ts += m.optG.stateTensors().map { ("optG." + $0.0, $0.1.copy()) }
        ts += m.optD.stateTensors().map { ("optD." + $0.0, $0.1.copy()) }
        if let e = m.emaGenerator { ts += e.stateDict(prefix: "G_ema.").map { ($0.0, $0.1.copy()) } }
        self.init(config: trainer.config, step: trainer.step, sampler: trainer.sampler, tensors: ts.map { (name: $0.0, tensor: $0.1) })
    }

    public func tensor(_ name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

    /// Tensors under `prefix` (the prefix removed).
    public func group(_ prefix: String) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (n, t) in tensors where n.hasPrefix(prefix) { out[String(n.dropFirst(prefix.count))] = t }
        return out
    }

    /// Loads the weights, buffers and optimizer state into `models` (built from the same config).
    public func restore(into models: GANModels, path: String = "checkpoint") throws {
        do {
            try models.generator.loadStateDict(group("G."))
            try models.discriminator.loadStateDict(group("D."))
            try models.optG.loadState(group("optG."))
            try models.optD.loadState(group("optD."))
            if let e = models.emaGenerator {
                // A checkpoint without the average (imported weights): it starts at G's.
                let ema = group("G_ema.")
                try e.loadStateDict(ema.isEmpty ? group("G.") : ema)
            }
        } catch {
            throw Error(path: path, reason: "does not fit the model it describes: \(error)")
        }
    }

    // MARK: encoding

    public func encode() throws -> Data {
        var entries: [Header.Entry] = []
        var offset = 0
        for (n, t) in tensors {
            entries.append(.init(name: n, shape: t.shape, offset: offset))
            offset += t.count
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let header = try enc.encode(Header(config: config, step: step, sampler: sampler, tensors: entries))
        var out = Data(Checkpoint.magic)
        appendLE(&out, Checkpoint.version)
        appendLE(&out, UInt64(header.count))
        out.append(header)
        out.reserveCapacity(out.count + offset * 4 + 4)
        for (_, t) in tensors {
            t.buffer.withMemoryRebound(to: UInt8.self) { raw in
                // float32 little-endian: the host order on every platform Swift runs on here.
                out.append(raw.baseAddress!, count: t.count * 4)
            }
        }
        let crc = out.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count))) }
        appendLE(&out, crc)
        return out
    }

    public func write(to path: String) throws {
        try AtomicFile.write(try encode(), to: path)
    }

    public static func read(path: String) throws -> Checkpoint {
        func fail(_ r: String) -> Error { Error(path: path, reason: r) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw fail("cannot read the checkpoint: \(readProblem(path, error))")
        }
        return try decode(data, path: path)
    }

    /// Parses a checkpoint's bytes (`path` names it in errors).
    public static func decode(_ data: Data, path: String = "<checkpoint>") throws -> Checkpoint {
        let data = data.startIndex == 0 ? data : Data(data)   // offsets below count from 0
        func fail(_ r: String) -> Error { Error(path: path, reason: r) }
        guard data.count >= 24, Array(data.prefix(8)) == magic else {
            throw fail("not a RingGAN checkpoint (it does not start with the RINGGAN magic)")
        }
        let version: UInt32 = readLE(data, 8)
        guard version == Checkpoint.version else {
            throw fail("checkpoint format version \(version); this build reads version \(Checkpoint.version)")
        }
        let storedCRC: UInt32 = readLE(data, data.count - 4)
        let crc = data.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt(data.count - 4))) }
        guard crc == storedCRC else {
            throw fail("corrupt checkpoint: checksum mismatch (stored \(String(storedCRC, radix: 16)), computed \(String(crc, radix: 16))); the file is truncated or damaged")
        }
        let hlen: UInt64 = readLE(data, 12)
        guard hlen < UInt64(data.count), 20 + Int(hlen) + 4 <= data.count else { throw fail("header length \(hlen) does not fit the file") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data.subdata(in: 20..<(20 + Int(hlen)))) } catch {
            throw fail("unreadable checkpoint header (\(error))")
        }
        // What the header describes must be something a model can be built from...
        if let problem = header.config.validate() { throw fail("invalid config in the checkpoint: \(problem)") }
        guard header.step >= 0 else { throw fail("invalid step \(header.step) in the checkpoint") }
        let body = 20 + Int(hlen)
        let floats = (data.count - 4 - body) / 4
        // ...and every tensor entry is checked (checked arithmetic, inside the data section, no
        // two sharing values) before any is allocated, so what is allocated never exceeds the
        // file's own size.
        var spans: [(name: String, begin: Int, end: Int)] = []
        for e in header.tensors {
            guard e.shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(e.name)' has a negative dimension in \(e.shape)") }
            guard let n = Tensor.checkedByteCount(e.shape, itemSize: 4).map({ $0 / 4 }) else {
                throw fail("tensor '\(e.name)' of shape \(e.shape) is too large (its size overflows)")
            }
            guard e.offset >= 0, e.offset <= floats, n <= floats - e.offset else {
                throw fail("tensor '\(e.name)' (offset \(e.offset), \(n) values) lies outside the data section of \(floats) values")
            }
            spans.append((e.name, e.offset, e.offset + n))
        }
        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(a.name)' [\(a.begin), \(a.end)) and '\(b.name)' [\(b.begin), \(b.end)) overlap")
        }
        var ts: [(name: String, tensor: Tensor)] = []
        for e in header.tensors {
            let n = Tensor.elementCount(e.shape)
            let t = Tensor(uninitializedShape: e.shape)
            data.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(t.data).copyMemory(from: raw.baseAddress! + body + e.offset * 4, byteCount: n * 4)
            }
            ts.append((e.name, t))
        }
        return Checkpoint(config: header.config, step: header.step, sampler: header.sampler, tensors: ts)
    }
}

func appendLE<T: FixedWidthInteger>(_ d: inout Data, _ v: T) {
    var le = v.littleEndian
    withUnsafeBytes(of: &le) { d.append(contentsOf: $0) }
}

func readLE<T: FixedWidthInteger>(_ d: Data, _ at: Int) -> T {
    var v: T = 0
    withUnsafeMutableBytes(of: &v) { dst in
        d.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[at..<(at + MemoryLayout<T>.size)])) }
    }
    return T(littleEndian: v)
}

/// Checkpoints of one run: `<dir>/step_00001234.rgan`, the newest `keep` kept.
public struct CheckpointStore {
    public let directory: String
    public let keep: Int

    public init(directory: String, keep: Int = 3) {
        self.directory = directory
        self.keep = max(1, keep)
    }

    public func path(step: Int) -> String { directory + "/" + String(format: "step_%08d.%@", step, Checkpoint.fileExtension) }

    /// Files of this store, oldest first.
    public func list() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("step_") && $0.hasSuffix("." + Checkpoint.fileExtension) }.sorted()
            .map { directory + "/" + $0 }
    }

    public func latest() -> String? { list().last }

    /// The newest checkpoint that reads back whole (checksum, header, entries), with what it
    /// holds; each newer one that does not is passed to `skipped` with its error and passed over.
    /// Nil when none verifies (or there are none). A re-formed ring and `--resume auto` resume
    /// from it.
    public func newestVerified(skipped: (String, Swift.Error) -> Void = { _, _ in }) -> (path: String, checkpoint: Checkpoint)? {
        for p in list().reversed() {
            do { return (p, try Checkpoint.read(path: p)) } catch { skipped(p, error) }
        }
        return nil
    }

    /// Writes atomically, then removes all but the newest `keep`.
    public func save(_ ckpt: Checkpoint) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let p = path(step: ckpt.step)
        try ckpt.write(to: p)
        let all = list()
        for old in all.dropLast(keep) { try? FileManager.default.removeItem(atPath: old) }
        return p
    }
}
