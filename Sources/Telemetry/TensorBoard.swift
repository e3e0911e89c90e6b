import CChecksum
import Foundation
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// TensorBoard event files, written by this code alone (no TensorFlow, no protobuf library):
//
//   file    = record*
//   record  = u64 length | u32 masked_crc32c(length) | data[length] | u32 masked_crc32c(data)
//
// all little-endian (TFRecord framing), each record's data one serialised `Event` protobuf:
//
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//
// The first record of a file is an Event with `file_version = "brain.Event:2"`.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses: the one
/// implementation in CChecksum (the SSE4.2 instruction where the CPU has it, a table otherwise).
public enum CRC32C {
    /// Continues `crc` (0 to start) over `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return ringgan_crc32c(crc, base, bytes.count)
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        if let r = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0)) }) { return r }
        return Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// TFRecord's masking: rotate right by 15, add a constant.
    public static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rot = masked &- 0xA282_EAD8
        return (rot >> 17) | (rot << 15)
    }
}

/// TFRecord framing of records (length and data each followed by their masked CRC-32C).
public enum TFRecord {
    public struct FormatError: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "not a valid TFRecord file: \(reason)" }
    }

    public static func frame(_ data: Data) -> Data {
        var out = Data(capacity: data.count + 16)
        var len = UInt64(data.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        let lenCRC = withUnsafeBytes(of: &len) { CRC32C.checksum($0) }
        var a = CRC32C.mask(lenCRC).littleEndian
        withUnsafeBytes(of: &a) { out.append(contentsOf: $0) }
        out.append(data)
        var b = CRC32C.mask(data.withUnsafeBytes { CRC32C.checksum($0) }).littleEndian
        withUnsafeBytes(of: &b) { out.append(contentsOf: $0) }
        return out
    }

    /// The records of a file's contents, every checksum verified.
    public static func records(_ file: Data) throws -> [Data] {
        var out: [Data] = []
        let bytes = [UInt8](file)
        var p = 0
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(bytes[at + k]) << (8 * k) }
            return v
        }
        while p < bytes.count {
            guard p + 12 <= bytes.count else { throw FormatError(reason: "truncated record header at byte \(p)") }
            let n = le(p, UInt64.self)
            let lenCRC = bytes[p..<(p + 8)].withUnsafeBytes { CRC32C.checksum($0) }
            guard CRC32C.mask(lenCRC) == le(p + 8, UInt32.self) else { throw FormatError(reason: "bad length checksum at byte \(p)") }
            guard n <= UInt64(bytes.count - p - 16) else { throw FormatError(reason: "record at byte \(p) of \(n) bytes runs past the end") }
            let start = p + 12, end = start + Int(n)
            let dataCRC = bytes[start..<end].withUnsafeBytes { CRC32C.checksum($0) }
            guard CRC32C.mask(dataCRC) == le(end, UInt32.self) else { throw FormatError(reason: "bad data checksum in record at byte \(p)") }
            out.append(Data(bytes[start..<end]))
            p = end + 4
        }
        return out
    }
}

/// Just enough of the protobuf wire format to write TensorBoard's Event and Summary messages.
public struct ProtoWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }

    /// int32 / int64 (negative values as ten-byte two's complement, as protobuf does).
    public mutating func int(_ field: Int, _ v: Int64) { key(field, 0); varint(UInt64(bitPattern: v)) }

    public mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }

    public mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }

    public mutating func bytes<C: Collection>(_ field: Int, _ b: C) where C.Element == UInt8 {
        key(field, 2)
        varint(UInt64(b.count))
        bytes += b
    }

    public mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }

    public mutating func message(_ field: Int, _ m: ProtoWriter) { bytes(field, m.bytes) }
}

/// TensorBoard's Event messages.
public enum TensorBoardEvent {
    public static let fileVersion = "brain.Event:2"

    public enum Value {
        case scalar(Float)
        /// A PNG: its bytes, width, height, channels (1 gray, 3 RGB, 4 RGBA).
        case image(png: Data, width: Int, height: Int, channels: Int)
    }

    public static func fileVersionEvent(wallTime: Double) -> Data {
        var e = ProtoWriter()
        e.double(1, wallTime)
        e.int(2, 0)
        e.string(3, fileVersion)
        return Data(e.bytes)
    }

    public static func summaryEvent(wallTime: Double, step: Int, values: [(tag: String, value: Value)]) -> Data {
        var summary = ProtoWriter()
        for (tag, value) in values {
            var v = ProtoWriter()
            v.string(1, tag)
            switch value {
            case .scalar(let x):
                v.float(2, x)
            case .image(let png, let width, let height, let channels):
                var img = ProtoWriter()
                img.int(1, Int64(height))
                img.int(2, Int64(width))
                img.int(3, Int64(channels))
                img.bytes(4, png)
                v.message(4, img)
            }
            summary.message(1, v)
        }
        var e = ProtoWriter()
        e.double(1, wallTime)
        e.int(2, Int64(step))
        e.message(5, summary)
        return Data(e.bytes)
    }
}

/// Writes one TensorBoard event file, `events.out.tfevents.<unix seconds>.<hostname>` in
/// `directory` (created if needed), readable by `tensorboard --logdir` while it is written.
///
/// Records are buffered and reach the file on `flush()`, when the buffer passes 1 MB, when
/// `flushEvery` seconds have passed since the last flush (checked on each write), and on
/// `close()` / deinit. Thread-safe: every method may be called from any thread.
public final class EventWriter: @unchecked Sendable {
    public let path: String
    public let flushEvery: Double
    private let lock = NSLock()
    private var fd: Int32
    private var pending = Data()
    private var pendingRecords = 0
    private var lastFlush: Double
    private var dropped = 0
    private var failure: String?
    /// Events lost to failed writes (a full disk): each failed flush drops what it held and
    /// truncates the file back to its last whole record, so the file stays readable.
    public var droppedEvents: Int { lock.lock(); defer { lock.unlock() }; return dropped }
    /// Why the last flush failed; nil once one succeeds again.
    public var writeError: String? { lock.lock(); defer { lock.unlock() }; return failure }
    private let clock: () -> Double

    public struct Error: Swift.Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot write TensorBoard events to \(path): \(reason)" }
    }

    /// - flushEvery: seconds between automatic flushes (0: flush on every write).
    public init(directory: String, flushEvery: Double = 2, clock: @escaping () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.flushEvery = flushEvery
        self.clock = clock
        do {
            try FileManager.default.createDirectory(atPath: directory.isEmpty ? "." : directory, withIntermediateDirectories: true)
        } catch {
            throw Error(path: directory, reason: "cannot create the folder (\(error.localizedDescription))")
        }
        let now = clock()
        let base = (directory.isEmpty ? "." : directory) + "/events.out.tfevents.\(Int(now)).\(EventWriter.hostname())"
        // Another writer may have started in the same second: never append to its file.
        var candidate = base
        var fd: Int32 = -1
        for attempt in 0..<1000 {
            if attempt > 0 { candidate = base + ".\(getpid()).\(attempt)" }
            fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw Error(path: candidate, reason: String(cString: strerror(errno))) }
        self.fd = fd
        path = candidate
        lastFlush = now
        pending.append(TFRecord.frame(TensorBoardEvent.fileVersionEvent(wallTime: now)))
        try flushLocked()
    }

    deinit { close() }

    static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let name = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace && $0 != "/" }
        return name.isEmpty ? "localhost" : name
    }

    /// Scalars of one step in one event.
    public func scalars(_ values: [(String, Float)], step: Int) {
        guard !values.isEmpty else { return }
        append(TensorBoardEvent.summaryEvent(wallTime: clock(), step: step, values: values.map { (tag: $0.0, value: .scalar($0.1)) }))
    }

    public func scalar(_ tag: String, _ value: Float, step: Int) { scalars([(tag, value)], step: step) }

    /// A PNG image (`channels`: 1 gray, 3 RGB, 4 RGBA).
    public func image(_ tag: String, png: Data, width: Int, height: Int, channels: Int = 1, step: Int) {
        append(TensorBoardEvent.summaryEvent(wallTime: clock(), step: step,
                                             values: [(tag: tag, value: .image(png: png, width: width, height: height, channels: channels))]))
    }

    /// Images [N, C, H, W] in [-1, 1] as one `imageGrid` PNG (the same picture `saveImageGrid` writes).
    public func imageGrid(_ tag: String, _ images: Tensor, nrow: Int = 8, step: Int) {
        let g = Telemetry.imageGrid(images, nrow: nrow)
        image(tag, png: PNG.encode(width: g.width, height: g.height, channels: g.channels, pixels: g.pixels),
              width: g.width, height: g.height, channels: g.channels, step: step)
    }

    private func append(_ event: Data) {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return }
        pending.append(TFRecord.frame(event))
        pendingRecords += 1
        if pending.count >= 1 << 20 || clock() - lastFlush >= flushEvery { try? flushLocked() }
    }

    /// Writes what is buffered to the file.
    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        try? flushLocked()
    }

    private func flushLocked() throws {
        lastFlush = clock()
        guard fd >= 0, !pending.isEmpty else { return }
        let data = pending, records = pendingRecords
        pending.removeAll(keepingCapacity: true)
        pendingRecords = 0
        let failure = data.withUnsafeBytes { appendWhole(fd, $0) }
        if let f = failure {
            // The partial record is already cut off (a reader stops at one); what was whole stays.
            dropped += records
            self.failure = f
            throw Error(path: path, reason: f)
        }
        self.failure = nil
    }

    /// Flushes and closes the file; later writes are ignored.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return }
        try? flushLocked()
        fsync(fd)
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
        fd = -1
    }
}
