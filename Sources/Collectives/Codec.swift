import CZstd
import Foundation

/// How gradient segments travel between ring neighbours.
public enum GradientCodec: String, CaseIterable, Codable, Sendable {
    /// Raw little-endian float32.
    case none
    /// zstd on the raw floats.
    case zstd
    /// zstd after a byte-shuffle filter (all first bytes of the floats, then all second bytes,
    /// ... as blosc does), on the bits rotated so one byte is exactly the exponent: the exponents
    /// of gradients are alike and compress well.
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

    public init(codec: GradientCodec, level: Int32 = 1) {
        self.codec = codec
        self.level = level
        cctx = ZSTD_createCCtx()
        dctx = ZSTD_createDCtx()
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
        encode(src, n, into: &encoded)
        try encoded.withUnsafeBytes { try conn.send(type, tag: tag, payload: $0) }
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
            try decode(b, n, into: dst, add: add, peer: conn.peer)
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

    /// Encodes `n` floats; the result is valid until the next call.
    public func encode(_ src: UnsafePointer<Float>, _ n: Int, into out: inout [UInt8]) {
        let width = codec.isLossy ? 2 : 4
        let raw = n * width
        if codec == .none {
            out.removeAll(keepingCapacity: true)
            out.append(contentsOf: UnsafeRawBufferPointer(start: src, count: raw))
            return
        }
        if packed.count < raw { packed = [UInt8](repeating: 0, count: raw) }
        packed.withUnsafeMutableBytes { pk in
            let dst = pk.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch codec {
            case .zstd:
                memcpy(dst, src, raw)
            case .shuffleZstd:
                // Rotated left by one bit first, so the top byte holds exactly the 8 exponent
                // bits (alike across a layer's gradients) and the random sign bit goes to the
                // bottom byte with the random low mantissa bits.
                let (d0, d1, d2, d3) = (dst, dst + n, dst + 2 * n, dst + 3 * n)
                for i in 0..<n {
                    let b = src[i].bitPattern
                    let r = (b << 1) | (b >> 31)
                    d0[i] = UInt8(truncatingIfNeeded: r)
                    d1[i] = UInt8(truncatingIfNeeded: r >> 8)
                    d2[i] = UInt8(truncatingIfNeeded: r >> 16)
                    d3[i] = UInt8(truncatingIfNeeded: r >> 24)
                }
            case .bf16ShuffleZstd:
                let lo = dst, hi = dst + n
                for i in 0..<n {
                    let h = SegmentCoder.toBF16(src[i])
                    let r = (h << 1) | (h >> 15)   // exponent in the high byte, as above
                    lo[i] = UInt8(truncatingIfNeeded: r)
                    hi[i] = UInt8(truncatingIfNeeded: r >> 8)
                }
            case .none: break
            }
        }
        let bound = ZSTD_compressBound(raw)
        if out.count < bound { out = [UInt8](repeating: 0, count: bound) }
        let written = out.withUnsafeMutableBytes { o in
            packed.withUnsafeBytes { pk in
                ZSTD_compressCCtx(cctx, o.baseAddress, bound, pk.baseAddress, raw, level)
            }
        }
        precondition(ZSTD_isError(written) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(written)))")
        out.removeLast(out.count - written)
    }

    /// Decodes exactly `n` floats from `src` and adds them into `dst` (reduce-scatter) or
    /// stores them there (all-gather).
    public func decode(_ src: UnsafeRawBufferPointer, _ n: Int, into dst: UnsafeMutablePointer<Float>, add: Bool, peer: String) throws {
        let width = codec.isLossy ? 2 : 4
        let raw = n * width
        if codec == .none {
            guard src.count == raw else { throw NetError(peer, "segment of \(src.count) bytes, expected \(raw)") }
            SegmentCoder.unpack(src.baseAddress!, n, codec, dst, add)
            return
        }
        if scratch.count < raw { scratch = [UInt8](repeating: 0, count: raw) }
        let c = codec
        try scratch.withUnsafeMutableBytes { sb in
            let got = ZSTD_decompressDCtx(dctx, sb.baseAddress, raw, src.baseAddress, src.count)
            if ZSTD_isError(got) != 0 { throw NetError(peer, "corrupt compressed segment (\(String(cString: ZSTD_getErrorName(got))))") }
            guard got == raw else { throw NetError(peer, "segment decompressed to \(got) bytes, expected \(raw)") }
            SegmentCoder.unpack(UnsafeRawPointer(sb.baseAddress!), n, c, dst, add)
        }
    }

    private static func unpack(_ plain: UnsafeRawPointer, _ n: Int, _ codec: GradientCodec,
                               _ dst: UnsafeMutablePointer<Float>, _ add: Bool) {
        let b = plain.assumingMemoryBound(to: UInt8.self)
        switch codec {
        case .none, .zstd:
            if add { for i in 0..<n { dst[i] += plain.loadUnaligned(fromByteOffset: i * 4, as: Float.self) } }
            else { memcpy(dst, plain, n * 4) }
        case .shuffleZstd:
            let (b1, b2, b3) = (b + n, b + 2 * n, b + 3 * n)
            for i in 0..<n {
                let r = UInt32(b[i]) | UInt32(b1[i]) << 8 | UInt32(b2[i]) << 16 | UInt32(b3[i]) << 24
                let v = Float(bitPattern: (r >> 1) | (r << 31))
                if add { dst[i] += v } else { dst[i] = v }
            }
        case .bf16ShuffleZstd:
            let hi = b + n
            for i in 0..<n {
                let r = UInt16(b[i]) | UInt16(hi[i]) << 8
                let v = Float(bitPattern: UInt32((r >> 1) | (r << 15)) << 16)
                if add { dst[i] += v } else { dst[i] = v }
            }
        }
    }
}
