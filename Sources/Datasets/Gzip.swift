import CZlib

/// Streaming gzip (and zlib) decompression with zlib's `inflate`.
enum Gzip {
    static func isGzip(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// Inflates `input` (one or more gzip members) and hands the output to `sink` in chunks of at
    /// most 64 KiB; `sink` may throw to stop early (a size cap). Corrupt or cut-off data throws a
    /// `DataError` of kind `.corruptGzip` naming `path`.
    static func inflate(_ input: UnsafeBufferPointer<UInt8>, path: String,
                        sink: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard input.count < Int(UInt32.max) else {
            throw DataError(.tooLarge, path: path, "compressed file of \(input.count) bytes is too large")
        }
        var strm = z_stream()
        guard inflateInit2_(&strm, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(.corruptGzip, path: path, "corrupt gzip: cannot initialise zlib")
        }
        defer { inflateEnd(&strm) }
        let chunk = 1 << 16
        let out = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { out.deallocate() }
        strm.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
        strm.avail_in = UInt32(input.count)
        while true {
            strm.next_out = out
            strm.avail_out = UInt32(chunk)
            let ret = CZlib.inflate(&strm, Z_NO_FLUSH)
            let produced = chunk - Int(strm.avail_out)
            if produced > 0 { try sink(UnsafeBufferPointer(start: out, count: produced)) }
            switch ret {
            case Z_OK:
                continue
            case Z_STREAM_END:
                if strm.avail_in == 0 { return }
                // Another gzip member may follow (as `cat a.gz b.gz` makes); anything else is garbage.
                let rest = UnsafeBufferPointer(start: strm.next_in, count: Int(strm.avail_in))
                guard isGzip(rest) else {
                    throw DataError(.corruptGzip, path: path,
                                    "corrupt gzip: \(rest.count) bytes of trailing garbage after the compressed data")
                }
                inflateReset(&strm)
            case Z_BUF_ERROR where strm.avail_in == 0:
                throw DataError(.corruptGzip, path: path,
                                "corrupt gzip: the compressed data ends early (file cut off?)")
            default:
                let msg = strm.msg.map { String(cString: $0) } ?? "zlib error \(ret)"
                throw DataError(.corruptGzip, path: path, "corrupt gzip: \(msg)")
            }
        }
    }
}
