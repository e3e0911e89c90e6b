import CKernels
import CZstd
import Foundation

/// How gradient segments travel between ring neighbours.
public enum GradientCodec: String, CaseIterable, Codable, Sendable {
    /// Raw little-endian float32.
    case none
    /// zstd on the raw floats.
    case zstd
    /// A byte-shuffle filter (all first bytes of the floats, then all second bytes, ... as blosc
    /// does) on the bits rotated so one byte is exactly the exponent, then zstd on the exponent's
    /// plane (gradients' exponents are alike and compress well) and on any mantissa plane that
    /// a sample says compresses; the others travel raw.
    case shuffleZstd = "shuffle-zstd"
    /// Lossy: rounded to bfloat16 (round to nearest even), 2-byte shuffle, zstd. Every rank ends
    /// with the same rounded values (the owner of a chunk rounds its own copy too).
    case bf16ShuffleZstd = "bf16-shuffle-zstd"

    public var isLossy: Bool { self == .bf16ShuffleZstd }

    /// Largest relative error one rounding can add (bf16 keeps 8 significant bits).
    public var relativeErrorBound: Float { isLossy ? 1.0 / 256 : 0 }
}

/// One codec's end of a ring link: encodes float segments and sends them as frames, receives
/// frames and decodes them into place; keeps its zstd contexts and scratch buffers for the life
/// of the ring (one coder per direction: the sender thread encodes, the calling thread decodes).
/// The raw codec is a codec like the others: its frames go straight from and into the buffer.
public final class SegmentCoder {
    public let codec: GradientCodec
    public let level: Int32
    private let cctx: OpaquePointer
    private let dctx: OpaquePointer
    private var scratch: [UInt8] = []
    private var packed: [UInt8] = []
    /// Encoded segment waiting to be sent (sender side).
    private var encoded: [UInt8] = []
    /// Received payload waiting to be decoded (receiver side).
    private var received: [UInt8] = []
    /// Seconds spent encoding segments for `send` and decoding them in `receive` (decoding
    /// includes adding into the buffer); the raw codec's frames go straight from and into the
    /// buffer and count nothing. Each written by the one thread that uses this coder.
    public private(set) var encodeSeconds = 0.0
    public private(set) var decodeSeconds = 0.0

    public init(codec: GradientCodec, level: Int32 = 1) {
        self.codec = codec
        self.level = level
        cctx = ZSTD_createCCtx()
        dctx = ZSTD_createDCtx()
        // Matches of at least 7 bytes, from a 64-entry table: in a gradient's exponent plane
        // only runs repeat (of zeros, of one exponent); the rest is entropy-coded literals.
        // Level 1's own choice (4-byte matches, a 2^14 table) spent most of the codec's time
        // looking for short matches that are not there (bench/RESULTS.md, "Codecs").
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, 7)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, 6)
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        ZSTD_freeDCtx(dctx)
    }

    /// Sends `n` floats from `src` as one frame of `type`: encoded, or for the raw codec
    /// straight from the buffer.
    public func send(_ src: UnsafePointer<Float>, _ n: Int, as type: FrameType, tag: UInt64, over conn: Connection) throws {
        if codec == .none {
            try conn.send(type, tag: tag, payload: UnsafeRawBufferPointer(start: src, count: n * 4))
            return
        }
        // Encoded into the first bytes of a buffer that only grows, so it is neither
        // reallocated nor zero-filled to the bound per segment.
        let t0 = monotonic()
        let length = encodeKeepingCapacity(src, n, into: &encoded)
        encodeSeconds += monotonic() - t0
        try encoded.withUnsafeBytes { try conn.send(type, tag: tag, payload: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }

    /// Reads the payload of a frame whose header said `length` bytes and `checksum`, checks it,
    /// and adds its `n` floats into `dst` (reduce-scatter) or stores them there (all-gather;
    /// the raw codec reads straight into place and checks there).
    public func receive(length: Int, checksum: UInt32, from conn: Connection, _ n: Int, into dst: UnsafeMutablePointer<Float>,
                        add: Bool) throws {
        if codec == .none && !add {
            guard length == n * 4 else { throw NetError(conn.peer, "segment of \(length) bytes, expected \(n * 4)") }
            try conn.readExactly(dst, length)
            try conn.checkPayload(UnsafeRawBufferPointer(start: dst, count: length), checksum: checksum, what: "ring segment")
            return
        }
        if received.count < length { received = [UInt8](repeating: 0, count: length) }
        try received.withUnsafeMutableBytes { sb in
            try conn.readExactly(sb.baseAddress!, length)
            let b = UnsafeRawBufferPointer(start: sb.baseAddress, count: length)
            try conn.checkPayload(b, checksum: checksum, what: "ring segment")
            let t0 = monotonic()
            try decode(b, n, into: dst, add: add, peer: conn.peer)
            if codec != .none { decodeSeconds += monotonic() - t0 }
        }
    }

    /// Rounds values in place to what the codec delivers (identity for lossless codecs).
    public static func quantize(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ codec: GradientCodec) {
        guard codec.isLossy else { return }
        for i in 0..<n { p[i] = Float(bitPattern: UInt32(toBF16(p[i])) << 16) }
    }

    @inline(__always) static func toBF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = ((bits >> 16) & 1) + 0x7FFF
        return UInt16((bits &+ rounding) >> 16)
    }

    /// A codec's byte planes for `n` values: how many, and the bytes in each (`zstd` has one,
    /// the whole segment).
    @inline(__always) private func planes(_ n: Int) -> (count: Int, size: Int) {
        switch codec {
        case .zstd: return (1, n * 4)
        case .shuffleZstd: return (4, n)
        case .bf16ShuffleZstd: return (2, n)
        case .none: return (1, n * 4)
        }
    }

    /// Rotated left by one bit, so the top byte holds exactly the 8 exponent bits and the
    /// random sign bit goes to the bottom byte with the random low mantissa bits.
    @inline(__always) static func rotated(_ f: Float) -> UInt32 {
        let b = f.bitPattern
        return (b << 1) | (b >> 31)
    }

    @inline(__always) static func rotatedBF16(_ f: Float) -> UInt16 {
        let h = toBF16(f)
        return (h << 1) | (h >> 15)   // exponent in the high byte, as above
    }

    /// Which planes go through zstd (bit j for plane j): the exponent's (the last) always; a
    /// mantissa plane when the entropy of its bytes in a sample of 1,024 values (16 runs of 64,
    /// spread over the segment) is under 7 bits a byte. A gradient's mantissa bytes are close to
    /// random (7.8 bits in such a sample); zeros, constants and other repeats are far below.
    private func compressedPlanes(_ src: UnsafePointer<Float>, _ n: Int) -> UInt8 {
        let count = planes(n).count
        var mask: UInt8 = 1 << (count - 1)
        guard count > 1, n >= 1024 else { return n >= 64 ? mask : 0 }
        let lossy = codec.isLossy
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 768) { h in
            h.initialize(repeating: 0)
            for run in 0..<16 {
                let base = src + (n - 64) * run / 15
                for i in 0..<64 {
                    if lossy {
                        h[Int(SegmentCoder.rotatedBF16(base[i]) & 0xFF)] += 1
                    } else {
                        let r = SegmentCoder.rotated(base[i])
                        h[Int(r & 0xFF)] += 1
                        h[256 + Int((r >> 8) & 0xFF)] += 1
                        h[512 + Int((r >> 16) & 0xFF)] += 1
                    }
                }
            }
            for j in 0..<(count - 1) {
                var bits = 0.0
                for c in h[(256 * j)..<(256 * j + 256)] where c > 0 { let q = Double(c) / 1024; bits -= q * log2(q) }
                if bits < 7 { mask |= 1 << j }
            }
        }
        return mask
    }

    /// Encodes `n` floats; the result is valid until the next call.
    ///
    /// The shuffle codecs split the rotated floats into byte planes, as blosc does: plane j
    /// holds byte j of every value, the exponent's plane last. Each plane is zstd-coded or sent
    /// raw (`compressedPlanes`): a gradient's mantissa bytes are close to random, and zstd
    /// gained nothing on them (ratio 1.192 with them, 1.195 without) but spent most of the
    /// codec's time there. Payload: one byte with bit j set where plane j is zstd-coded; the
    /// raw planes in order; then each zstd-coded plane in order as its length (u32,
    /// little-endian) and its frame.
    public func encode(_ src: UnsafePointer<Float>, _ n: Int, into out: inout [UInt8]) {
        if codec == .none {
            out.removeAll(keepingCapacity: true)
            out.append(contentsOf: UnsafeRawBufferPointer(start: src, count: n * 4))
            return
        }
        let length = encodeKeepingCapacity(src, n, into: &out)
        out.removeLast(out.count - length)
    }

    /// `encode` into the first bytes of `out`, returning how many (`out` is grown within its
    /// capacity, never reallocated per segment). Not for the raw codec.
    private func encodeKeepingCapacity(_ src: UnsafePointer<Float>, _ n: Int, into out: inout [UInt8]) -> Int {
        let (count, size) = planes(n)
        let mask = codec == .zstd ? 1 : compressedPlanes(src, n)
        let bound = ZSTD_compressBound(size)
        let most = 1 + count * (4 + bound)
        if out.count < most { out.append(contentsOf: repeatElement(0, count: most - out.count)) }
        if packed.count < count * size { packed = [UInt8](repeating: 0, count: count * size) }
        let c = codec
        return out.withUnsafeMutableBytes { ob in
            packed.withUnsafeMutableBytes { pk in
                let o = ob.baseAddress!.assumingMemoryBound(to: UInt8.self)
                let z = pk.baseAddress!.assumingMemoryBound(to: UInt8.self)
                // Plane j's destination: a raw plane straight into the payload, a zstd-coded
                // one into the buffer zstd reads.
                var at = 1
                withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<UInt8>.self, capacity: 4) { dst in
                    for j in 0..<count {
                        if mask & (1 << j) != 0 { dst[j] = z + j * size } else { dst[j] = o + at; at += size }
                    }
                    switch c {
                    case .zstd:
                        memcpy(z, src, size)
                    case .shuffleZstd:
                        rg_split_planes4(src, n, dst[0], dst[1], dst[2], dst[3])
                    case .bf16ShuffleZstd:
                        rg_split_planes_bf16(src, n, dst[0], dst[1])
                    case .none: break
                    }
                }
                for j in 0..<count where mask & (1 << j) != 0 {
                    let w = ZSTD_compress2(cctx, o + at + 4, bound, z + j * size, size)
                    precondition(ZSTD_isError(w) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(w)))")
                    withUnsafeBytes(of: UInt32(w).littleEndian) { UnsafeMutableRawPointer(o + at).copyMemory(from: $0.baseAddress!, byteCount: 4) }
                    at += 4 + w
                }
                o[0] = mask
                return at
            }
        }
    }

    /// n raw little-endian floats at `p` (any alignment) added into `dst` or stored there.
    private static func put(_ p: UnsafeRawPointer, _ n: Int, into dst: UnsafeMutablePointer<Float>, add: Bool) {
        if add { for i in 0..<n { dst[i] += p.loadUnaligned(fromByteOffset: i * 4, as: Float.self) } }
        else { memcpy(dst, p, n * 4) }
    }

    /// Decodes exactly `n` floats from `src` and adds them into `dst` (reduce-scatter) or
    /// stores them there (all-gather).
    public func decode(_ src: UnsafeRawBufferPointer, _ n: Int, into dst: UnsafeMutablePointer<Float>, add: Bool, peer: String) throws {
        if codec == .none {
            guard src.count == n * 4 else { throw NetError(peer, "segment of \(src.count) bytes, expected \(n * 4)") }
            SegmentCoder.put(src.baseAddress!, n, into: dst, add: add)
            return
        }
        let (count, size) = planes(n)
        guard src.count >= 1, src[0] >> count == 0 else {
            throw NetError(peer, "corrupt compressed segment (\(src.isEmpty ? "empty" : "plane mask \(src[0]) for \(count) planes"))")
        }
        if scratch.count < count * size { scratch = [UInt8](repeating: 0, count: count * size) }
        let c = codec
        try scratch.withUnsafeMutableBytes { sb in
            let z = sb.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let o = src.baseAddress!.assumingMemoryBound(to: UInt8.self)
            // Where each plane's bytes are: in the payload (raw) or decompressed into scratch.
            try withUnsafeTemporaryAllocation(of: UnsafePointer<UInt8>.self, capacity: 4) { plane in
                let mask = src[0]
                var at = 1
                for j in 0..<count where mask & (1 << j) == 0 {
                    guard src.count - at >= size else { throw NetError(peer, "corrupt compressed segment (raw plane \(j) truncated)") }
                    plane[j] = o + at
                    at += size
                }
                for j in 0..<count where mask & (1 << j) != 0 {
                    guard src.count - at >= 4 else { throw NetError(peer, "corrupt compressed segment (truncated at plane \(j))") }
                    let w = Int(src.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian)
                    guard src.count - at - 4 >= w else { throw NetError(peer, "corrupt compressed segment (plane \(j) of \(w) bytes runs past the end)") }
                    let got = ZSTD_decompressDCtx(dctx, z + j * size, size, o + at + 4, w)
                    if ZSTD_isError(got) != 0 { throw NetError(peer, "corrupt compressed segment (\(String(cString: ZSTD_getErrorName(got))))") }
                    guard got == size else { throw NetError(peer, "segment decompressed to \(got) bytes, expected \(size)") }
                    plane[j] = UnsafePointer(z + j * size)
                    at += 4 + w
                }
                guard at == src.count else { throw NetError(peer, "corrupt compressed segment (\(src.count - at) bytes after the last plane)") }
                switch c {
                case .zstd:
                    SegmentCoder.put(UnsafeRawPointer(plane[0]), n, into: dst, add: add)
                case .shuffleZstd:
                    rg_join_planes4(plane[0], plane[1], plane[2], plane[3], n, dst, add ? 1 : 0)
                case .bf16ShuffleZstd:
                    rg_join_planes_bf16(plane[0], plane[1], n, dst, add ? 1 : 0)
                case .none: break
                }
            }
        }
    }
}
