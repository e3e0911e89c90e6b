/// The lanes of a hierarchical all-reduce for one rank of `hosts` x `perHost` ranks, numbered
/// host by host (rank = host x perHost + local): `inter` goes to the same local rank of the next
/// host (position = host, size = hosts), `local[k - 1]` sends to local rank local + k of this host
/// and receives from local - k (k = 1 ..< perHost; position = local, size = perHost). The local
/// lanes must be lossless: they carry each rank's own values, which the flat ring never rounds.
public struct HostLanes {
    public let inter: RingLane
    public let local: [RingLane]
    public init(inter: RingLane, local: [RingLane]) { self.inter = inter; self.local = local }
    public var hosts: Int { inter.size }
    public var perHost: Int { local.first?.size ?? 1 }
}

extension RingAlgorithms {
    /// Sums `plan.range` of the buffer at `p` over hosts x perHost ranks in place, bit for bit as
    /// `allReduce` sums it round the flat ring of the same ranks (host by host): every element is
    /// added in the flat ring's order, rank c, c + 1, ..., c - 1 for an element of chunk c.
    ///
    /// Local rank j of each host owns the flat chunks c with c mod perHost = j, one per host:
    /// 1. on the host, each rank sends every other rank the values of that rank's chunks
    ///    (perHost - 1 exchanges over the local lanes), so rank j holds its host's perHost values
    ///    of its chunks;
    /// 2. between hosts, the ranks of local index j form a ring of `hosts`: chunk c of host o
    ///    starts at host o with x_c + ... + x_(oL + L - 1), every other host adds its L values in
    ///    local order as the partial sum passes (hosts - 1 hops), and (for j > 0) one more hop
    ///    brings it home to host o, which adds x_(oL) ... x_(c - 1): the flat ring's order
    ///    exactly. Then the final chunks go round the hosts (hosts - 1 hops);
    /// 3. on the host, each rank sends its final chunks to the others.
    /// 2 hosts - 1 hops between hosts against the flat ring's 2 (N - 1), for the same bytes over
    /// each host's link; the local exchanges move (perHost - 1) / perHost of the buffer twice.
    /// With a lossy codec on `inter`, the flat ring rounds a partial sum at every hop; the host's
    /// own additions round it the same way between ranks, so the bits stay the flat ring's.
    /// `plan.ranks` is hosts x perHost; segments are the plan's.
    public static func hierarchicalAllReduce(_ p: UnsafeMutablePointer<Float>, _ plan: ChunkPlan, op: UInt64, average: Bool,
                                             over lanes: HostLanes) throws {
        let H = lanes.hosts, L = lanes.perHost, h = lanes.inter.position, j = lanes.local.first?.position ?? 0
        precondition(plan.ranks == H * L, "hierarchicalAllReduce: a plan of \(plan.ranks) ranks for \(H) x \(L)")
        precondition(lanes.local.count == L - 1, "hierarchicalAllReduce: \(lanes.local.count) local lanes for \(L) ranks a host")
        // The host's other ranks' values of this rank's chunks, by local rank (whole-buffer
        // indices; only this rank's chunks are filled).
        // Sized to the range being summed (a bucket is a small part of the buffer), indexed by
        // whole-buffer position through `slot`.
        let span = plan.range.count
        let staged = UnsafeMutablePointer<Float>.allocate(capacity: max(1, L * span))
        defer { staged.deallocate() }
        func slot(_ local: Int) -> UnsafeMutablePointer<Float> { staged + local * span - plan.range.lowerBound }
        // Local rank l's values of this rank's chunks (its own buffer for l = j).
        func row(_ local: Int) -> UnsafeMutablePointer<Float> { local == j ? p : slot(local) }
        let mine = (0..<H).map { $0 * L + j }
        // 1. Gather this rank's chunks' values from the host.
        try exchange(plan, op: op, phase: 0, over: lanes.local, send: { t in (0..<H).map { $0 * L + t } }, j: j, L: L,
                     into: { s, lo, m, lane, tag in try lane.receive(m, tag: tag, into: slot(s) + lo, add: false) },
                     from: p)
        // 2. Between hosts: reduce along the flat order, then pass the final chunks round.
        try hostRing(p, plan, op: op, average: average, over: lanes.inter, chunks: mine, h: h, H: H, L: L, j: j, row: row)
        // 3. Every rank of the host gets every final chunk.
        try exchange(plan, op: op, phase: 1, over: lanes.local, send: { _ in mine }, j: j, L: L,
                     into: { _, lo, m, lane, tag in try lane.receive(m, tag: tag, into: p + lo, add: false) }, from: p)
    }

    /// perHost - 1 rounds on the host: round k sends local rank j + k the chunks `send(j + k)`
    /// names (from `from`), and receives from j - k what `into` stores (the sender's list for j).
    private static func exchange(_ plan: ChunkPlan, op: UInt64, phase: UInt64, over local: [RingLane],
                                 send: (Int) -> [Int], j: Int, L: Int,
                                 into: (_ from: Int, _ lo: Int, _ m: Int, RingLane, SegmentTag) throws -> Void,
                                 from p: UnsafeMutablePointer<Float>) throws {
        for (index, lane) in local.enumerated() {
            let k = index + 1, to = (j + k) % L, from = (j - k + L) % L
            var piece = 0
            for c in send(to) {
                for s in 0..<plan.segments(c) {
                    let (lo, m) = plan.segment(c, s)
                    lane.post(p + lo, m, tag: SegmentTag(op: op, phase: phase, step: k, segment: piece))
                    piece += 1
                }
            }
            // What `from` sends here: the chunks of this rank (phase 0) or of `from` (phase 1).
            piece = 0
            for c in (phase == 0 ? send(j) : (0..<(plan.ranks / L)).map { $0 * L + from }) {
                for s in 0..<plan.segments(c) {
                    let (lo, m) = plan.segment(c, s)
                    try into(from, lo, m, lane, SegmentTag(op: op, phase: phase, step: k, segment: piece))
                    piece += 1
                }
            }
            try lane.checkSends()
        }
        for lane in local { try lane.flush() }
    }

    /// Step 2 of `hierarchicalAllReduce` on the ring of the hosts' rank j: `chunks[o]` is the
    /// flat chunk that starts at host o.
    private static func hostRing(_ p: UnsafeMutablePointer<Float>, _ plan: ChunkPlan, op: UInt64, average: Bool,
                                 over lane: RingLane, chunks: [Int], h: Int, H: Int, L: Int, j: Int,
                                 row: (Int) -> UnsafeMutablePointer<Float>) throws {
        let inv = 1 / Float(plan.ranks)
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: max(1, lane.segmentFloats))
        defer { acc.deallocate() }
        // Partial sums in flight, one per segment of this rank's own chunk, kept until sent.
        var outgoing: [UnsafeMutablePointer<Float>] = []
        defer {
            // Freed only once the lane has sent them (on a failure the adaptor has closed the
            // connections, so this returns).
            _ = try? lane.flush()
            for b in outgoing { b.deallocate() }
        }
        func tag(_ phase: UInt64, _ step: Int, _ k: Int) -> SegmentTag { SegmentTag(op: op, phase: phase, step: step, segment: k) }
        func post(_ values: UnsafePointer<Float>, _ m: Int, _ t: SegmentTag) {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: max(1, m))
            b.update(from: values, count: m)
            outgoing.append(b)
            lane.post(b, m, tag: t)
        }
        // The flat ring's last addition to chunk c is at rank c - 1: for j > 0 on the chunk's own
        // host (one hop past the other hosts), for j = 0 on the host before it. The final value
        // is made there, unrounded until scaled, as the flat ring makes it.
        let steps = j == 0 ? H - 1 : H
        func finish(_ lo: Int, _ m: Int, _ k: Int) {
            for i in 0..<m { p[lo + i] = average ? acc[i] * inv : acc[i] }
            lane.quantize(p + lo, m)
            if H > 1 { lane.post(p + lo, m, tag: tag(1, 0, k)) }
        }
        // Step 0: the own chunk's fold from x_c through the host's last rank.
        let own = chunks[h]
        for k in 0..<plan.segments(own) {
            let (lo, m) = plan.segment(own, k)
            acc.update(from: p + lo, count: m)
            fold(acc, m, lo, (j + 1)..<max(j + 1, L), roundFirst: true, lane, row)
            if steps == 0 { finish(lo, m, k) } else { post(acc, m, tag(0, 0, k)) }
        }
        // Steps 1 ... steps: the chunk of host h - s arrives; add this host's values (all of
        // them, or at its home, those of the ranks before the chunk's first).
        for s in stride(from: 1, through: steps, by: 1) {
            let c = chunks[(h - s + H) % H]
            for k in 0..<plan.segments(c) {
                let (lo, m) = plan.segment(c, k)
                try lane.receive(m, tag: tag(0, s - 1, k), into: acc, add: false)
                let upTo = s == H ? j : L
                // The received sum is rounded already (the lane's hop); later ranks' hops round.
                fold(acc, m, lo, 0..<upTo, roundFirst: false, lane, row)
                if s < steps { post(acc, m, tag(0, s, k)) } else { finish(lo, m, k) }
            }
            try lane.checkSends()
        }
        try passFinals(p, plan, op: op, over: lane, chunks: chunks, h: h, H: H, steps: steps)
        try lane.flush()
    }

    /// Adds elements [lo, lo + m) of each local rank in `locals`, in order, into the partial sums
    /// `acc`, each sum rounded before each addition as the flat ring's hop between two ranks
    /// rounds it (the lane's codec; before the first only with `roundFirst`: a received sum has
    /// crossed its hop already). Element by element the flat ring's order; whole segments at a
    /// time.
    private static func fold(_ acc: UnsafeMutablePointer<Float>, _ m: Int, _ lo: Int, _ locals: Range<Int>, roundFirst: Bool,
                             _ lane: RingLane, _ row: (Int) -> UnsafeMutablePointer<Float>) {
        for l in locals {
            if roundFirst || l != locals.lowerBound { lane.quantize(acc, m) }
            let v = row(l) + lo
            for i in 0..<m { acc[i] += v[i] }
        }
    }

    /// The final chunks round the hosts (the all-gather of `hostRing`): host x finished the chunk
    /// of host x - steps.
    private static func passFinals(_ p: UnsafeMutablePointer<Float>, _ plan: ChunkPlan, op: UInt64, over lane: RingLane,
                                   chunks: [Int], h: Int, H: Int, steps: Int) throws {
        func tag(_ step: Int, _ k: Int) -> SegmentTag { SegmentTag(op: op, phase: 1, step: step, segment: k) }
        for s in 1..<H {
            let c = chunks[(h - s - steps + 2 * H) % H]
            for k in 0..<plan.segments(c) {
                let (lo, m) = plan.segment(c, k)
                try lane.receive(m, tag: tag(s - 1, k), into: p + lo, add: false)
                if s < H - 1 { lane.post(p + lo, m, tag: tag(s, k)) }
            }
            try lane.checkSends()
        }
    }
}

/// How the ranks of a ring sit on hosts, for the hierarchical all-reduce: `hosts` x `perHost`
/// ranks numbered host by host (rank = host x perHost + local), so that the hierarchical sums
/// are bit for bit the flat ring's (`RingAlgorithms.hierarchicalAllReduce`).
public struct HostLayout: Equatable, Sendable, CustomStringConvertible {
    public let hosts: Int
    public let perHost: Int
    public init(hosts: Int, perHost: Int) {
        precondition(hosts >= 1 && perHost >= 1)
        self.hosts = hosts; self.perHost = perHost
    }

    public var description: String { "\(hosts) hosts x \(perHost) ranks" }

    /// The ranks the link between hosts goes to and comes from: the same local rank of the next
    /// and the previous host.
    public func interTo(_ rank: Int) -> Int { (rank + perHost) % (hosts * perHost) }
    public func interFrom(_ rank: Int) -> Int { (rank - perHost + hosts * perHost) % (hosts * perHost) }
    /// Local link k (1 ..< perHost) goes to local rank + k of the same host and comes from - k.
    public func localTo(_ rank: Int, _ k: Int) -> Int { rank - rank % perHost + (rank % perHost + k) % perHost }
    public func localFrom(_ rank: Int, _ k: Int) -> Int { rank - rank % perHost + (rank % perHost - k + perHost) % perHost }

    /// The layout of ranks whose hosts (by rank) are `hostOf`, or why there is none: at least two
    /// hosts, each with the same number (at least two) of ranks, each host's ranks consecutive.
    public static func grouping(_ hostOf: [String]) -> (layout: HostLayout?, why: String) {
        var order: [String] = [], count: [String: Int] = [:]
        for h in hostOf {
            if count[h] == nil { order.append(h) }
            count[h, default: 0] += 1
        }
        guard order.count >= 2 else { return (nil, "all \(hostOf.count) ranks are on one host") }
        let L = count[order[0]]!
        guard L >= 2 else { return (nil, "one rank a host") }
        guard order.allSatisfy({ count[$0] == L }) else {
            return (nil, "the hosts have different numbers of ranks (\(order.map { "\($0): \(count[$0]!)" }.joined(separator: ", ")))")
        }
        for (r, h) in hostOf.enumerated() where h != order[r / L] {
            return (nil, "the ranks of a host are not consecutive (rank \(r) is on \(h), not \(order[r / L]))")
        }
        return (HostLayout(hosts: order.count, perHost: L), "\(order.count) hosts x \(L) ranks")
    }
}

/// The addresses a rank dials for the hierarchical all-reduce: rank `interTo`'s (when there is
/// more than one host) and rank `localTo(k)`'s for k = 1 ..< perHost.
public struct HostLinkAddresses {
    public let layout: HostLayout
    public let inter: (String, UInt16)
    public let local: [(String, UInt16)]
    public init(layout: HostLayout, inter: (String, UInt16), local: [(String, UInt16)]) {
        self.layout = layout; self.inter = inter; self.local = local
    }
}

/// The formed links of the hierarchical all-reduce: (dialled, accepted) connections.
struct HostConnections {
    let layout: HostLayout
    let inter: (toward: Connection, from: Connection)
    let local: [(toward: Connection, from: Connection)]
    var all: [Connection] { [inter.toward, inter.from] + local.flatMap { [$0.toward, $0.from] } }
}
