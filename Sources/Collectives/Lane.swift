import Foundation

/// Which segment of which collective a frame carries, checked on receipt so that ranks that
/// disagree on the collective stop with an error instead of adding the wrong numbers.
///
/// On the wire (the frame header's 64-bit tag): bits 0-11 the segment within its chunk (modulo
/// 4096: segments of one chunk arrive in order, so the low bits suffice), bits 12-22 the step
/// (at most 2047 steps: a ring of at most 2048 ranks, checked at formation), bit 23 the phase
/// (0 reduce-scatter, 1 all-gather), bits 24-63 the collective's number on its lane.
public struct SegmentTag: Equatable, Sendable, CustomStringConvertible {
    public var op: UInt64
    public var phase: UInt64
    public var step: Int
    public var segment: Int

    public static let maxSteps = 1 << 11

    public init(op: UInt64, phase: UInt64, step: Int, segment: Int) {
        self.op = op; self.phase = phase; self.step = step; self.segment = segment
    }

    public var wire: UInt64 { (op << 24) | (phase << 23) | (UInt64(step) << 12) | UInt64(segment & 0xFFF) }

    public var description: String { "\(wire)" }
}

/// One direction round a ring, as a collective algorithm sees it: segments go to the next rank
/// along the lane (queued, sent in order in the background) and come from the previous one.
/// The algorithms (`RingAlgorithms`) are written against this alone, so they run over sockets
/// (`SocketLane`) or in memory (`MemoryLane`, for tests) unchanged.
public protocol RingLane: AnyObject {
    /// This rank's position along the lane, and the ranks on it.
    var position: Int { get }
    var size: Int { get }
    /// The most floats one segment carries.
    var segmentFloats: Int { get }
    /// Rounds `m` values in place to what the lane delivers (identity for lossless codecs), so
    /// the sender keeps the very values its receivers decode.
    func quantize(_ p: UnsafeMutablePointer<Float>, _ m: Int)
    /// Queues `m` floats at `p` for the next rank; `p` must stay valid until `flush`.
    func post(_ p: UnsafePointer<Float>, _ m: Int, tag: SegmentTag)
    /// Receives the previous rank's next segment, which must be `tag` with `m` floats, and adds
    /// it into (or stores it at) `dst`.
    func receive(_ m: Int, tag: SegmentTag, into dst: UnsafeMutablePointer<Float>, add: Bool) throws
    /// Throws the first failure of a queued send, if any.
    func checkSends() throws
    /// Waits until every queued send has gone out; throws the first failure.
    func flush() throws
}

/// A lane over TCP: frames to `send`, from `receive`, encoded by a codec's coders, sent on a
/// thread of its own.
final class SocketLane: RingLane {
    let send: Connection
    let receiveFrom: Connection
    let sender: JobQueue
    let coders: (send: SegmentCoder, receive: SegmentCoder)
    let position: Int
    let size: Int
    let segmentFloats: Int
    /// Frames of at most this many floats are sent on the caller's thread when the sender has
    /// nothing queued before them (0: never). The statistics lanes' frames are a few kilobytes:
    /// handed to the sender thread, each would wait for that thread to be scheduled (on a
    /// machine whose core is busy with the training thread, up to a scheduler slice, or the
    /// rest of a CPU budget's period), and every other rank waits for the last rank's frame.
    let inlineFloats: Int

    init(send: Connection, receive: Connection, sender: JobQueue, coders: (send: SegmentCoder, receive: SegmentCoder),
         position: Int, size: Int, segmentFloats: Int, inlineFloats: Int = 0) {
        self.send = send; self.receiveFrom = receive; self.sender = sender; self.coders = coders
        self.position = position; self.size = size; self.segmentFloats = segmentFloats; self.inlineFloats = inlineFloats
    }

    func quantize(_ p: UnsafeMutablePointer<Float>, _ m: Int) { SegmentCoder.quantize(p, m, coders.send.codec) }

    func post(_ p: UnsafePointer<Float>, _ m: Int, tag: SegmentTag) {
        let out = send, enc = coders.send, t = tag.wire
        if m <= inlineFloats, sender.runHereIfIdle({ try enc.send(p, m, as: .ringSegment, tag: t, over: out); return m * 4 }) {
            return
        }
        _ = sender.enqueue {
            try enc.send(p, m, as: .ringSegment, tag: t, over: out)
            return m * 4
        }
    }

    func receive(_ m: Int, tag: SegmentTag, into dst: UnsafeMutablePointer<Float>, add: Bool) throws {
        let from = receiveFrom
        let (type, got, length, checksum) = try from.readHeader(maxPayload: 16 + segmentFloats * 8)
        guard type == .ringSegment else { throw NetError(from.peer, "expected a ring segment, got \(type)") }
        guard got == tag.wire else {
            throw NetError(from.peer, "out-of-order ring segment (tag \(got), expected \(tag)): the ranks disagree on the collective")
        }
        try coders.receive.receive(length: length, checksum: checksum, from: from, m, into: dst, add: add)
    }

    func checkSends() throws { if let e = sender.error { throw e } }

    func flush() throws {
        sender.waitAll()
        try checkSends()
    }
}

/// Lanes in memory, for testing the algorithms without sockets: `MemoryLane.ring(size:codec:)`
/// gives one lane per rank, each rank's posts going (encoded by the codec, as on the wire) to
/// the next rank's inbox. Run each rank on a thread of its own.
public final class MemoryLane: RingLane, @unchecked Sendable {
    public let position: Int
    public let size: Int
    public let segmentFloats: Int
    private let encoder: SegmentCoder
    private let decoder: SegmentCoder
    private let inbox = NSCondition()
    private var frames: [(tag: UInt64, bytes: [UInt8])] = []
    fileprivate weak var next: MemoryLane?

    init(position: Int, size: Int, codec: GradientCodec, segmentFloats: Int) {
        self.position = position; self.size = size; self.segmentFloats = segmentFloats
        encoder = SegmentCoder(codec: codec); decoder = SegmentCoder(codec: codec)
    }

    /// `size` lanes joined in a ring: lane i posts to lane i + `step` (mod size; -2^k gives
    /// round k's lanes of `RingAlgorithms.bruckAllGather`).
    public static func ring(size: Int, codec: GradientCodec = .none, segmentFloats: Int = 4096, step: Int = 1) -> [MemoryLane] {
        let lanes = (0..<size).map { MemoryLane(position: $0, size: size, codec: codec, segmentFloats: segmentFloats) }
        for (i, l) in lanes.enumerated() { l.next = lanes[((i + step) % size + size) % size] }
        return lanes
    }

    public func quantize(_ p: UnsafeMutablePointer<Float>, _ m: Int) { SegmentCoder.quantize(p, m, encoder.codec) }

    public func post(_ p: UnsafePointer<Float>, _ m: Int, tag: SegmentTag) {
        var bytes: [UInt8] = []
        encoder.encode(p, m, into: &bytes)
        guard let next else { return }
        next.inbox.lock()
        next.frames.append((tag.wire, bytes))
        next.inbox.signal()
        next.inbox.unlock()
    }

    public func receive(_ m: Int, tag: SegmentTag, into dst: UnsafeMutablePointer<Float>, add: Bool) throws {
        inbox.lock()
        while frames.isEmpty { inbox.wait() }
        let f = frames.removeFirst()
        inbox.unlock()
        guard f.tag == tag.wire else {
            throw NetError("memory lane \(position)", "out-of-order ring segment (tag \(f.tag), expected \(tag))")
        }
        try f.bytes.withUnsafeBytes { try decoder.decode($0, m, into: dst, add: add, peer: "memory lane \(position)") }
    }

    public func checkSends() throws {}
    public func flush() throws {}
}
