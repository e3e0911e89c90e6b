import CChecksum
import Foundation

/// Every message on every RingGAN connection is a frame: a 24-byte header, then the payload.
///
///     magic "RGAN" | version u8 | type u8 | flags u16 | tag u64 | length u32 | checksum u32
///
/// little-endian; the checksum covers the payload. The length is checked against a limit before
/// anything is allocated, and anything malformed closes the connection with an error naming
/// the peer. After the handshake (`Handshake`) every frame is followed by a 16-byte tag
/// (`FrameMAC`) over its sequence number, header and payload, which catches a corrupted,
/// forged, changed, replayed or reordered frame; the checksum field is then 0 (the tag makes
/// the checksum redundant, and it cost as much CPU).
public enum FrameType: UInt8, Sendable {
    // control (coordinator <-> worker)
    case challenge = 1, hello = 2, welcome = 3, reject = 4, start = 5, batch = 6, stepDone = 7, heartbeat = 8
    case stop = 9, finished = 10, failure = 11
    // ring (worker <-> worker)
    case ringHello = 20, ringSegment = 21
}

public struct Frame: Sendable {
    public static let magic: [UInt8] = Array("RGAN".utf8)
    /// 2: mutual authentication in the handshake and a tag on every frame after it.
    /// 3: the shuffle codecs send the mantissa byte planes raw unless they compress (a version-2
    /// peer would misread such segments); frames after the handshake carry no checksum (0), the
    /// tag alone.
    public static let version: UInt8 = 3
    public static let headerSize = 24
    /// The largest payload accepted unless a connection says otherwise.
    public static let defaultMaxPayload = 256 << 20

    public var type: FrameType
    public var tag: UInt64
    public var payload: [UInt8]

    public init(_ type: FrameType, tag: UInt64 = 0, payload: [UInt8] = []) {
        self.type = type
        self.tag = tag
        self.payload = payload
    }

    /// A frame carrying a JSON-encoded value.
    public init<T: Encodable>(_ type: FrameType, tag: UInt64 = 0, json: T) throws {
        self.init(type, tag: tag, payload: Array(try JSONEncoder().encode(json)))
    }

    public func decode<T: Decodable>(_ t: T.Type, from peer: String) throws -> T {
        do { return try JSONDecoder().decode(t, from: Data(payload)) } catch {
            throw NetError(peer, "malformed \(type) message (\(error))")
        }
    }
}

/// The frame checksum (`ringgan_frame_checksum`): CRC-32C of each third of the payload, run as
/// three interleaved streams of the SSE4.2 instruction (one stream is latency-bound and cost the
/// ring a large share of its bandwidth: bench/RESULTS.md, measured with gan-dist-bench),
/// combined by rotation and xor. Not a plain CRC-32C of the payload (that is
/// Telemetry's `CRC32C`, over the same C code).
public func frameChecksum(_ p: UnsafeRawBufferPointer) -> UInt32 {
    guard let base = p.baseAddress, p.count > 0 else { return 0 }
    return ringgan_frame_checksum(base, p.count)
}

func header(_ type: FrameType, tag: UInt64, length: Int, crc: UInt32) -> [UInt8] {
    var h = Frame.magic
    h.append(Frame.version)
    h.append(type.rawValue)
    h += [0, 0]
    withUnsafeBytes(of: tag.littleEndian) { h += $0 }
    withUnsafeBytes(of: UInt32(length).littleEndian) { h += $0 }
    withUnsafeBytes(of: crc.littleEndian) { h += $0 }
    return h
}

extension Frame {
    /// Checks a 24-byte frame header from `peer`; returns type, tag, payload length and checksum.
    public static func parseHeader(_ h: [UInt8], maxPayload: Int, peer: String) throws -> (FrameType, UInt64, Int, UInt32) {
        guard h.count == Frame.headerSize else { throw NetError(peer, "truncated frame header (\(h.count) bytes)") }
        guard Array(h[0..<4]) == Frame.magic else {
            throw NetError(peer, "not a RingGAN peer (bad frame magic \(h[0..<4].map { String(format: "%02x", $0) }.joined()))")
        }
        guard h[4] == Frame.version else { throw NetError(peer, "frame version \(h[4]); this build speaks version \(Frame.version)") }
        guard let type = FrameType(rawValue: h[5]) else { throw NetError(peer, "unknown frame type \(h[5])") }
        let tag = h[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let length = Int(h[16..<20].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) })
        let crc = h[20..<24].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        guard length <= maxPayload else {
            throw NetError(peer, "frame of \(length) bytes exceeds the \(maxPayload)-byte limit")
        }
        return (type, tag, length, crc)
    }
}

extension Connection {
    /// Sends a frame whose payload is raw memory (no copy). Once the session is authenticated
    /// the checksum field is 0 and not computed: the frame's tag covers every byte.
    public func send(_ type: FrameType, tag: UInt64 = 0, payload: UnsafeRawBufferPointer) throws {
        let crc = sendMAC == nil ? frameChecksum(payload) : 0
        try writeFrame(header: header(type, tag: tag, length: payload.count, crc: crc), payload: payload)
    }

    public func send(_ type: FrameType, tag: UInt64 = 0, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try send(type, tag: tag, payload: $0) }
    }

    public func send(_ frame: Frame) throws {
        try frame.payload.withUnsafeBytes { try send(frame.type, tag: frame.tag, payload: $0) }
    }

    public func send<T: Encodable>(_ type: FrameType, tag: UInt64 = 0, json: T) throws {
        try send(try Frame(type, tag: tag, json: json))
    }

    /// Reads one frame header and checks it; returns type, tag, payload length and checksum.
    /// The payload must then be read and passed to `checkPayload`.
    public func readHeader(maxPayload: Int = Frame.defaultMaxPayload) throws -> (FrameType, UInt64, Int, UInt32) {
        try lastHeader.withUnsafeMutableBytes { try readExactly($0.baseAddress!, Frame.headerSize) }
        return try Frame.parseHeader(lastHeader, maxPayload: maxPayload, peer: peer)
    }

    /// Checks the payload of the frame whose header was read last: before the session is
    /// authenticated its checksum; after, the tag that follows it on the wire, which covers the
    /// header and every byte of the payload (the checksum field is then 0 and not computed: the
    /// CRC cost the ring as much CPU as the tag did, gan-dist-bench's profile in bench/RESULTS.md).
    public func checkPayload(_ payload: UnsafeRawBufferPointer, checksum: UInt32, what: @autoclosure () -> String) throws {
        guard let mac = receiveMAC else {
            guard frameChecksum(payload) == checksum else { throw NetError(peer, "\(what()) checksum mismatch (corrupt frame)") }
            return
        }
        var got = [UInt8](repeating: 0, count: FrameMAC.tagSize)
        try got.withUnsafeMutableBytes { try readExactly($0.baseAddress!, FrameMAC.tagSize) }
        let want = lastHeader.withUnsafeBytes { mac.next(header: $0, payload: payload) }
        var diff: UInt8 = 0
        for i in 0..<FrameMAC.tagSize { diff |= got[i] ^ want[i] }
        guard diff == 0 else {
            throw NetError(peer, "\(what()) failed authentication (frame \(mac.sequence - 1) of the session: corrupted, forged, altered, replayed or out of order)")
        }
    }

    /// Reads a whole frame (payload checked against its checksum and, after the handshake, its tag).
    public func receive(maxPayload: Int = Frame.defaultMaxPayload) throws -> Frame {
        let (type, tag, length, crc) = try readHeader(maxPayload: maxPayload)
        let payload = try read(length)
        try payload.withUnsafeBytes { try checkPayload($0, checksum: crc, what: "\(type) frame") }
        return Frame(type, tag: tag, payload: payload)
    }

    /// Reads a frame of an expected type.
    public func receive(_ expected: FrameType, maxPayload: Int = Frame.defaultMaxPayload) throws -> Frame {
        let f = try receive(maxPayload: maxPayload)
        if f.type == .failure || f.type == .reject {
            throw NetError(peer, String(decoding: f.payload, as: UTF8.self))
        }
        guard f.type == expected else { throw NetError(peer, "expected a \(expected) frame, got \(f.type)") }
        return f
    }
}
