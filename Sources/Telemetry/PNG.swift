import CZlib
import Foundation
import Tensors

/// A minimal PNG encoder: 8-bit gray (1 channel) or RGB (3 channels), no interlace, filter type 0
/// (None) on every row, the image data compressed with zlib's `compress2` at level 6.
public enum PNG {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The PNG file for `pixels` (row-major, `channels` bytes per pixel).
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> Data {
        precondition(width > 0 && height > 0 && width <= Int(Int32.max) && height <= Int(Int32.max),
                     "PNG: bad size \(width)x\(height)")
        precondition(channels == 1 || channels == 3, "PNG: channels must be 1 (gray) or 3 (RGB), got \(channels)")
        let stride = width * channels
        precondition(pixels.count == stride * height,
                     "PNG: \(pixels.count) bytes for \(width)x\(height)x\(channels)")

        // Scanlines, each preceded by its filter type byte (0).
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        raw.withUnsafeMutableBufferPointer { r in
            pixels.withUnsafeBufferPointer { p in
                for y in 0..<height {
                    (r.baseAddress! + y * (stride + 1) + 1).update(from: p.baseAddress! + y * stride, count: stride)
                }
            }
        }
        var packedSize = compressBound(uLong(raw.count))
        var packed = [UInt8](repeating: 0, count: Int(packedSize))
        let rc = compress2(&packed, &packedSize, raw, uLong(raw.count), 6)
        precondition(rc == Z_OK, "PNG: compress2 failed (\(rc))")
        packed.removeLast(packed.count - Int(packedSize))

        var ihdr: [UInt8] = []
        appendBE32(&ihdr, UInt32(width))
        appendBE32(&ihdr, UInt32(height))
        ihdr += [8, channels == 1 ? 0 : 2, 0, 0, 0]   // bit depth, colour type, compression, filter, interlace

        var out = signature
        appendChunk(&out, "IHDR", ihdr)
        appendChunk(&out, "IDAT", packed)
        appendChunk(&out, "IEND", [])
        return Data(out)
    }

    /// Encodes and writes atomically (the file is either wholly there or not at all).
    public static func write(width: Int, height: Int, channels: Int, pixels: [UInt8], to path: String) throws {
        try AtomicFile.write(encode(width: width, height: height, channels: channels, pixels: pixels), to: path)
    }

    static func appendBE32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    }

    /// Length, type, data, and the CRC-32 of type + data.
    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        let typeBytes = Array(type.utf8)
        appendBE32(&out, UInt32(data.count))
        var crc = crc32(0, typeBytes, uInt(typeBytes.count))
        crc = data.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        out += typeBytes
        out += data
        appendBE32(&out, UInt32(crc))
    }
}
