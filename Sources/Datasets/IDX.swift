#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Images read from an IDX file: `count` images of `rows` x `cols` bytes, row-major.
public struct ImageArray: Sendable, Equatable {
    public let count: Int
    public let rows: Int
    public let cols: Int
    public let pixels: [UInt8]

    public init(count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        precondition(pixels.count == count * rows * cols, "ImageArray: \(pixels.count) pixels for \(count)x\(rows)x\(cols)")
        self.count = count
        self.rows = rows
        self.cols = cols
        self.pixels = pixels
    }
}

/// The IDX format of MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian magic
/// `0x0000 08 NN` (unsigned bytes, NN dimensions), NN big-endian UInt32 dimensions, then exactly
/// the product of the dimensions in bytes. Files may be gzip-compressed.
public enum IDX {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801
    /// The most body bytes a header may declare (1 GiB; full MNIST's train images are 47 MB).
    public static let maxBodyBytes = 1 << 30
    /// The cap on decompressed output before the header has been seen.
    static let maxBytesBeforeHeader = 200 << 20

    public static func readImages(path: String) throws -> ImageArray {
        let (dims, body) = try read(path: path, magic: imagesMagic, what: "pixels")
        return ImageArray(count: dims[0], rows: dims[1], cols: dims[2], pixels: body)
    }

    public static func readLabels(path: String) throws -> [UInt8] {
        try read(path: path, magic: labelsMagic, what: "labels").body
    }

    // MARK: internals

    /// Reads the file at `path` (raw or gzip), checks the magic and that the body holds exactly the
    /// product of the dimensions; `what` names the body in messages ("pixels", "labels").
    static func read(path: String, magic: UInt32, what: String) throws -> (dims: [Int], body: [UInt8]) {
        try parse(try readFile(path), path: path, magic: magic, what: what)
    }

    /// Parses a file's bytes, raw or gzip (`path` names it in errors; the fuzzers call this).
    static func parse(_ file: [UInt8], path: String, magic: UInt32, what: String) throws -> (dims: [Int], body: [UInt8]) {
        try file.withUnsafeBufferPointer { bytes in
            if Gzip.isGzip(bytes) {
                var acc = Accumulator(path: path, magic: magic, what: what, compressedBytes: bytes.count)
                try Gzip.inflate(bytes, path: path) { try acc.append($0) }
                return try acc.finish()
            }
            guard let h = try header(bytes, path: path, magic: magic) else {
                throw DataError(.truncated, path: path,
                                "truncated: \(bytes.count) bytes, too short for an IDX header of \(headerSize(magic)) bytes")
            }
            let found = bytes.count - h.size
            try checkLength(expected: h.bodySize, found: found, path: path, what: what)
            return (h.dims, Array(bytes[h.size...]))
        }
    }

    static func headerSize(_ magic: UInt32) -> Int { 4 + 4 * Int(magic & 0xff) }

    struct Header { let dims: [Int]; let size: Int; let bodySize: Int }

    /// Parses the header from the first bytes of the (decompressed) file; nil when more bytes are
    /// needed. Throws as soon as the magic is wrong.
    static func header(_ b: UnsafeBufferPointer<UInt8>, path: String, magic: UInt32) throws -> Header? {
        func be32(_ i: Int) -> UInt32 {
            UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
        }
        if b.count < 4 { return nil }
        let found = be32(0)
        guard found == magic else {
            let kind = magic == imagesMagic ? "IDX images" : magic == labelsMagic ? "IDX labels" : "IDX"
            throw DataError(.wrongMagic, path: path,
                            "wrong magic \(hex(found)) (expected \(hex(magic)) for \(kind))")
        }
        let size = headerSize(magic)
        if b.count < size { return nil }
        var dims: [Int] = []
        var total = 1
        for d in 0..<Int(magic & 0xff) {
            let n = Int(be32(4 + 4 * d))
            guard n > 0 else {
                throw DataError(.badHeader, path: path, "bad header: dimension \(d) is 0")
            }
            let (p, overflow) = total.multipliedReportingOverflow(by: n)
            guard !overflow, p <= maxBodyBytes else {
                throw DataError(.tooLarge, path: path,
                                "header declares a body larger than \(maxBodyBytes) bytes")
            }
            total = p
            dims.append(n)
        }
        return Header(dims: dims, size: size, bodySize: total)
    }

    static func checkLength(expected: Int, found: Int, path: String, what: String, atLeast: Bool = false) throws {
        if found < expected {
            throw DataError(.truncated, path: path, "truncated: expected \(expected) bytes of \(what), found \(found)")
        }
        if found > expected {
            throw DataError(.extraBytes, path: path,
                            "extra bytes: expected \(expected) bytes of \(what), found \(atLeast ? "at least " : "")\(found)")
        }
    }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    /// Collects decompressed output: the header, then the body up to the size the header declares.
    /// Bytes beyond it are only counted (up to a bound), so a bad file cannot blow up memory.
    struct Accumulator {
        let path: String, magic: UInt32, what: String
        var head: [UInt8] = []
        var parsed: Header?
        var body: [UInt8] = []
        var extra = 0
        /// The most a deflate stream of the file's size can inflate to (deflate's ratio is at most
        /// 1032:1): a header declaring more is refused before anything is reserved.
        let maxInflated: Int

        init(path: String, magic: UInt32, what: String, compressedBytes: Int) {
            self.path = path; self.magic = magic; self.what = what
            let (m, o) = compressedBytes.multipliedReportingOverflow(by: 1032)
            maxInflated = o ? Int.max : m
        }

        mutating func append(_ chunk: UnsafeBufferPointer<UInt8>) throws {
            var rest = chunk[...]
            if parsed == nil {
                let need = IDX.headerSize(magic) - head.count
                head.append(contentsOf: rest.prefix(need))
                rest = rest.dropFirst(need)
                let h = try head.withUnsafeBufferPointer { try IDX.header($0, path: path, magic: magic) }
                guard let h else { return }
                guard h.bodySize <= maxInflated else {
                    throw DataError(.truncated, path: path,
                                    "truncated: the header declares \(h.bodySize) bytes of \(what), more than \(maxInflated / 1032) compressed bytes can hold")
                }
                parsed = h
                // Reserved as the data arrives beyond this, never from the header's word alone.
                body.reserveCapacity(min(h.bodySize, 1 << 20))
            }
            let room = parsed!.bodySize - body.count
            body.append(contentsOf: rest.prefix(room))
            extra += max(0, rest.count - room)
            if extra > IDX.maxBytesBeforeHeader {
                try IDX.checkLength(expected: parsed!.bodySize, found: body.count + extra, path: path,
                                    what: what, atLeast: true)
            }
        }

        func finish() throws -> (dims: [Int], body: [UInt8]) {
            guard let h = parsed else {
                throw DataError(.truncated, path: path,
                                "truncated: \(head.count) bytes, too short for an IDX header of \(IDX.headerSize(magic)) bytes")
            }
            try IDX.checkLength(expected: h.bodySize, found: body.count + extra, path: path, what: what)
            return (h.dims, body)
        }
    }

    /// The whole file, or a `DataError` naming the path (missing, a folder, unreadable).
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let e = errno
            throw DataError(e == ENOENT ? .missingFile : .unreadable, path: path,
                            e == ENOENT ? "missing file (no such file)" : "cannot open: \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError(.unreadable, path: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw DataError(.unreadable, path: path, "not a regular file")
        }
        let size = Int(st.st_size)
        guard size <= maxBodyBytes + 64 else {
            throw DataError(.tooLarge, path: path, "file of \(size) bytes is larger than \(maxBodyBytes) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        let failure: Int32 = bytes.withUnsafeMutableBytes { raw in
            while done < size {
                let n = posixRead(fd, raw.baseAddress! + done, size - done)
                if n < 0 { if errno == EINTR { continue }; return errno }
                if n == 0 { break }
                done += n
            }
            return 0
        }
        guard failure == 0 else {
            throw DataError(.unreadable, path: path, "read failed: \(String(cString: strerror(failure)))")
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }
}

/// `read(2)`; at file scope so that it is not shadowed by `IDX.read`.
private func posixRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, p, n) }
