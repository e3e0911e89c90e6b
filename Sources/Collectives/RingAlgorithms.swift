/// How a ring all-reduce cuts a buffer: one chunk per rank, each moving as segments.
///
/// An element's chunk, and so the order in which the ranks' values are added into it, depends
/// only on the whole buffer's length `n` and the ring's size, so summing a buffer range by range
/// (gradient buckets) gives bit for bit the sums of summing it whole.
public struct ChunkPlan: Sendable {
    /// The whole buffer's length, the range being summed, the ranks, and floats per segment.
    public let n: Int
    public let range: Range<Int>
    public let ranks: Int
    public let segmentFloats: Int

    public init(n: Int, range: Range<Int>, ranks: Int, segmentFloats: Int) {
        self.n = n; self.range = range; self.ranks = ranks; self.segmentFloats = segmentFloats
    }

    /// Chunk c of the whole buffer: contiguous, sizes differing by at most one (the first
    /// n % ranks chunks take one more).
    public func wholeChunk(_ c: Int) -> Range<Int> {
        let base = n / ranks, extra = n % ranks
        let start = c * base + min(c, extra)
        return start..<(start + base + (c < extra ? 1 : 0))
    }

    /// Chunk c of the range: the whole buffer's chunk c clamped to it (maybe empty).
    public func chunk(_ c: Int) -> Range<Int> {
        let whole = wholeChunk(c)
        let lo = min(max(whole.lowerBound, range.lowerBound), range.upperBound)
        let hi = max(min(whole.upperBound, range.upperBound), lo)
        return lo..<hi
    }

    /// Segments of chunk c: none for an empty chunk (the same on both ends of every link).
    public func segments(_ c: Int) -> Int { (chunk(c).count + segmentFloats - 1) / segmentFloats }

    /// Floats [lo, lo + m) of segment k of chunk c.
    public func segment(_ c: Int, _ k: Int) -> (lo: Int, m: Int) {
        let r = chunk(c)
        let lo = r.lowerBound + k * segmentFloats
        return (lo, max(0, min(segmentFloats, r.upperBound - lo)))
    }
}

/// The collective algorithms, each written against a `RingLane` only: what is sent and received
/// in which order, nothing about sockets, threads or accounting (the adaptor, `Ring`, owns those).
public enum RingAlgorithms {
    /// Sums `plan.range` of the buffer at `p` over the lane's ranks in place, every rank ending
    /// with identical values; `average` scales each final value by 1/size before it is sent on.
    /// A reduce-scatter then an all-gather (`reduceScatterGather`).
    public static func allReduce(_ p: UnsafeMutablePointer<Float>, _ plan: ChunkPlan, op: UInt64, average: Bool,
                                 over lane: RingLane) throws {
        precondition(plan.ranks == lane.size && plan.segmentFloats == lane.segmentFloats, "allReduce: the plan is not the lane's")
        let inv = 1 / Float(lane.size)
        try reduceScatterGather(plan, op: op, over: lane,
            post: { lo, m, t in lane.post(p + lo, m, tag: t) },
            add: { lo, m, t in try lane.receive(m, tag: t, into: p + lo, add: true) },
            store: { lo, m, t in try lane.receive(m, tag: t, into: p + lo, add: false) },
            final: { lo, m in
                // Scale and round as the lane will, before the chunk opens the all-gather.
                if average { for i in lo..<(lo + m) { p[i] *= inv } }
                lane.quantize(p + lo, m)
            })
    }

    /// Sums `plan.range` of the 64-bit integers at `p` over the lane's ranks in place, in wrapping
    /// two's-complement arithmetic: associative, so every rank ends with the same integers
    /// whatever the order of the additions (exact mode's fixed-point gradients, `ExactSum`). The
    /// same reduce-scatter and all-gather as `allReduce`; each integer travels as the two floats
    /// of its bit pattern (the lane's codec must be lossless), so the plan counts integers with
    /// half the lane's floats per segment (`integerPlan`). `scratch` holds one segment.
    public static func allReduceIntegers(_ p: UnsafeMutablePointer<Int64>, _ plan: ChunkPlan, op: UInt64,
                                         over lane: RingLane) throws {
        precondition(plan.ranks == lane.size && plan.segmentFloats * 2 <= lane.segmentFloats && plan.segmentFloats >= 1,
                     "allReduceIntegers: the plan is not the lane's (use integerPlan)")
        let words = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
        let scratch = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, plan.segmentFloats))
        defer { scratch.deallocate() }
        let scratchWords = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Float.self)
        try reduceScatterGather(plan, op: op, over: lane,
            post: { lo, m, t in lane.post(words + 2 * lo, 2 * m, tag: t) },
            add: { lo, m, t in
                try lane.receive(2 * m, tag: t, into: scratchWords, add: false)
                for i in 0..<m { p[lo + i] &+= scratch[i] }
            },
            store: { lo, m, t in try lane.receive(2 * m, tag: t, into: words + 2 * lo, add: false) },
            final: { _, _ in })
    }

    /// The plan of `allReduceIntegers` for `count` integers (all of them) over `lane`.
    public static func integerPlan(count: Int, over lane: RingLane) -> ChunkPlan {
        ChunkPlan(n: count, range: 0..<count, ranks: lane.size, segmentFloats: lane.segmentFloats / 2)
    }

    /// The reduce-scatter and all-gather both all-reduces share (gloo's `allreduce_ring`), over
    /// elements of any kind: `post` sends elements [lo, lo + m) with a tag, `add` receives m
    /// elements and adds them in at lo, `store` receives them into lo, `final` prepares a fully
    /// summed segment before it opens the all-gather.
    ///
    /// In size - 1 steps every rank passes a chunk on and adds the one it receives, leaving each
    /// rank owning one fully summed chunk; size - 1 more steps pass the summed chunks round. Each
    /// rank sends 2 (size - 1) / size of the buffer: the bandwidth-optimal amount. Pipelined by
    /// segment: the chunk a rank receives at one step is the one it sends at the next, so each
    /// received segment is posted as soon as it is added (or, at the last reduce-scatter step, as
    /// soon as it is final) while later segments are still arriving.
    private static func reduceScatterGather(_ plan: ChunkPlan, op: UInt64, over lane: RingLane,
                                            post: (_ lo: Int, _ m: Int, SegmentTag) -> Void,
                                            add: (_ lo: Int, _ m: Int, SegmentTag) throws -> Void,
                                            store: (_ lo: Int, _ m: Int, SegmentTag) throws -> Void,
                                            final: (_ lo: Int, _ m: Int) -> Void) throws {
        let N = lane.size, r = lane.position
        func tag(_ phase: UInt64, _ step: Int, _ k: Int) -> SegmentTag { SegmentTag(op: op, phase: phase, step: step, segment: k) }
        func send(_ c: Int, _ k: Int, _ t: SegmentTag) {
            let (lo, m) = plan.segment(c, k)
            post(lo, m, t)
        }
        // Reduce-scatter: step 0 sends chunk r as it is.
        for k in 0..<plan.segments(r) { send(r, k, tag(0, 0, k)) }
        for s in 0..<(N - 1) {
            let rc = (r - s - 1 + 2 * N) % N
            for k in 0..<plan.segments(rc) {
                let (lo, m) = plan.segment(rc, k)
                try add(lo, m, tag(0, s, k))
                if s < N - 2 {
                    send(rc, k, tag(0, s + 1, k))
                } else {
                    // Chunk r + 1 is now final here; it opens the all-gather.
                    final(lo, m)
                    send(rc, k, tag(1, 0, k))
                }
            }
            try lane.checkSends()
        }
        // All-gather.
        for s in 0..<(N - 1) {
            let rc = (r - s + N) % N
            for k in 0..<plan.segments(rc) {
                let (lo, m) = plan.segment(rc, k)
                try store(lo, m, tag(1, s, k))
                if s < N - 2 { send(rc, k, tag(1, s + 1, k)) }
            }
            try lane.checkSends()
        }
        // The buffer is the caller's again only when every send from it has gone out.
        try lane.flush()
    }

    /// Every rank's vector of `m` floats (at most one segment) passed round the lane. `all` holds
    /// size vectors of m floats, by position along the lane, this rank's own already in place;
    /// in size - 1 steps each rank passes on the vector it received (its own first), filling
    /// the rest. Half the hops of a reduce-scatter and all-gather, for a few kilobytes more on
    /// the wire: the small vectors' collective. `all` must stay valid until the lane's sends are
    /// done, also when this throws.
    public static func allGather(_ all: UnsafeMutablePointer<Float>, _ m: Int, op: UInt64, over lane: RingLane) throws {
        let N = lane.size, q = lane.position
        precondition(m <= lane.segmentFloats, "allGather: \(m) floats do not fit one segment")
        for s in 0..<(N - 1) {
            // Step s sends what step s - 1 received.
            let t = SegmentTag(op: op, phase: 1, step: s, segment: 0)
            lane.post(all + ((q - s + N) % N) * m, m, tag: t)
            try lane.receive(m, tag: t, into: all + ((q - s - 1 + N) % N) * m, add: false)
            try lane.checkSends()
        }
        try lane.flush()
    }
}

extension RingAlgorithms {
    /// Every rank's vector of `m` floats gathered in ceil(log2 size) rounds (Bruck, Huang, Upfal
    /// et al. 1997; MPI libraries' small-message all-gather): in round k each rank sends what it
    /// holds (all of it, or in the last round only what the receiver still lacks) to rank
    /// r - 2^k and appends what rank r + 2^k sends it. `lanes[k]` sends to r - 2^k and receives
    /// from r + 2^k (position = rank, for every lane).
    ///
    /// `held` holds size vectors of m floats in held order: this rank's own first (in place on
    /// entry), then ranks r + 1, r + 2, ... (mod size) on return. The same vectors as
    /// `allGather`, in log2 rounds instead of size - 1. `held` must stay valid until the lanes'
    /// sends are done, also when this throws.
    public static func bruckAllGather(_ held: UnsafeMutablePointer<Float>, _ m: Int, op: UInt64, over lanes: [RingLane]) throws {
        guard let first = lanes.first else { return }
        let N = first.size
        precondition(lanes.count == rounds(N), "bruckAllGather: \(lanes.count) lanes for the \(rounds(N)) rounds of \(N) ranks")
        var have = 1
        for (k, lane) in lanes.enumerated() {
            let count = min(have, N - have) * m
            postInPieces(held, count, op: op, step: k, over: lane)
            try receiveInPieces(held + have * m, count, op: op, step: k, over: lane)
            try lane.checkSends()
            have += count / max(m, 1)
        }
        for lane in lanes { try lane.flush() }
    }

    /// Every rank's vector of `m` floats gathered in one round, where every pair of ranks is
    /// linked: `lanes[d - 1]` sends this rank's vector to r - d and receives rank r + d's
    /// (d = 1 ... size - 1; position = rank, for every lane). All the sends are posted first,
    /// then the vectors are read as they come: size - 1 messages each way per rank, and the
    /// collective waits for one hop after the last rank reaches it, where `bruckAllGather`'s
    /// rounds wait for ceil(log2 size) (the last rank to arrive forwards nothing). `held` as in
    /// `bruckAllGather` (own vector first; rank r + d's at index d on return), so the two
    /// give the same vectors; it must stay valid until the lanes' sends are done, also when this
    /// throws.
    public static func directAllGather(_ held: UnsafeMutablePointer<Float>, _ m: Int, op: UInt64, over lanes: [RingLane]) throws {
        guard let first = lanes.first else { return }
        let N = first.size
        precondition(lanes.count == N - 1, "directAllGather: \(lanes.count) lanes for the \(N - 1) peers of \(N) ranks")
        for (k, lane) in lanes.enumerated() { postInPieces(held, m, op: op, step: k, over: lane) }
        for (k, lane) in lanes.enumerated() {
            try receiveInPieces(held + (k + 1) * m, m, op: op, step: k, over: lane)
            try lane.checkSends()
        }
        for lane in lanes { try lane.flush() }
    }

    /// The all-gathers' sends: `count` floats at `p` as frames of at most a segment each, cut at
    /// the same offsets as `receiveInPieces` cuts them, tagged (op, phase 1, step, piece).
    private static func postInPieces(_ p: UnsafePointer<Float>, _ count: Int, op: UInt64, step: Int, over lane: RingLane) {
        var piece = 0
        for lo in stride(from: 0, to: count, by: lane.segmentFloats) {
            lane.post(p + lo, min(lane.segmentFloats, count - lo), tag: SegmentTag(op: op, phase: 1, step: step, segment: piece))
            piece += 1
        }
    }

    /// The all-gathers' receives: `count` floats stored at `dst`, in the pieces `postInPieces` sent.
    private static func receiveInPieces(_ dst: UnsafeMutablePointer<Float>, _ count: Int, op: UInt64, step: Int, over lane: RingLane) throws {
        var piece = 0
        for lo in stride(from: 0, to: count, by: lane.segmentFloats) {
            try lane.receive(min(lane.segmentFloats, count - lo), tag: SegmentTag(op: op, phase: 1, step: step, segment: piece),
                             into: dst + lo, add: false)
            piece += 1
        }
    }

    /// Rounds of `bruckAllGather` for `size` ranks: ceil(log2 size).
    public static func rounds(_ size: Int) -> Int {
        var k = 0
        while (1 << k) < size { k += 1 }
        return k
    }
}
