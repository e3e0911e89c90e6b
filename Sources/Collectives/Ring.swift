import DataParallel
import Foundation

/// Bytes a ring has moved, for bandwidth and compression figures.
public struct RingStats: Sendable {
    /// Float bytes handed to the codec (what an uncompressed ring would send).
    public var rawBytes = 0
    /// Frame bytes written to the right neighbour (headers included).
    public var wireBytes = 0
    public var compressionRatio: Double { wireBytes > 0 ? Double(rawBytes) / Double(wireBytes) : 1 }
    /// Gradient all-reduces (whole buffers or bucket ranges) and the seconds they took on the
    /// collective thread, from the first segment queued to the last sent.
    public var gradientReduces = 0
    public var gradientSeconds = 0.0
    /// Exact all-reduces of SyncBatchNorm statistics and the seconds they took.
    public var statisticsReduces = 0
    public var statisticsSeconds = 0.0

    public init() {}
}

/// A ring of workers over TCP, as data-parallel training uses it: each rank sends to rank + 1 and
/// receives from rank - 1.
///
/// The pieces, as gloo has them: joining the ring is `Ring.form` (RingFormation.swift); each
/// direction round it is a lane (`SocketLane`: frames, tags, the codec, a sender thread); the
/// collectives are `RingAlgorithms`, written against a lane alone; this class is the adaptor
/// that training calls (`GradientReducer`, `BatchNormSynchronizer`): it picks the lane and the
/// algorithm, runs gradient collectives in call order on a thread of its own, and keeps the
/// account of bytes and time.
///
/// Gradients go to the right; SyncBatchNorm's statistics go the other way round, on the other
/// direction of the same two connections (each TCP direction is a stream of its own), so that a
/// statistics all-reduce called inside backward never waits behind gradient buckets still on
/// the wire.
public final class Ring: GradientReducer, BatchNormSynchronizer, @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    /// The gradients' codec, fixed when the ring forms (every rank must use the same one).
    public let codec: GradientCodec
    /// The codec gradients travel with: `codec`, or the raw one where `chooseCodec` found the
    /// link faster than the codec (`--codec auto`). Lossless either way, so the sums are the
    /// same bits; every rank switches at the same point, after the same collective.
    public var activeCodec: GradientCodec { gradientsRaw ? .none : codec }
    private var gradientsRaw = false
    public let level: Int32
    /// Floats per segment frame.
    public let segmentFloats: Int
    /// What the ring has moved so far (both lanes).
    public var stats: RingStats { statsLock.lock(); defer { statsLock.unlock() }; return _stats }
    private var _stats = RingStats()
    private let statsLock = NSLock()
    /// Raw bytes of collectives left out of the account (`chooseCodec`'s probe).
    private var rawOffset = 0
    /// The first network failure; after it every collective is a no-op and training stops.
    public var failure: Error? {
        failureLock.lock(); defer { failureLock.unlock() }
        return _failure
    }
    private var _failure: Error?
    private let failureLock = NSLock()

    let right: Connection?
    let left: Connection?
    private let sender = JobQueue(name: "ring-sender")
    /// The sender of the statistics lane (frames to the left neighbour).
    private let statsSender = JobQueue(name: "ring-stats-sender")
    /// Runs the gradient collectives one after another on a thread of their own, so gradient
    /// ranges are summed while backward goes on (`startReducing`).
    private let collectives = JobQueue(name: "ring-collectives")

    /// The lanes, made once at formation: gradients to the right with the ring's codec, the same
    /// direction with the raw codec (exact collectives), and statistics to the left (raw, used on
    /// the training thread). Each lane has its own coders (encoding on its sender thread,
    /// decoding on the caller's).
    private let gradientLane: SocketLane?
    private let exactLane: SocketLane?
    private let statisticsLane: SocketLane?
    /// The lanes of the statistics' small-vector all-gather in log2 rounds: round k sends to
    /// rank - 2^k and receives from rank + 2^k (the statistics lane, then one per far link);
    /// empty where the ring formed without far links.
    private let bruckLanes: [SocketLane]
    /// The lanes of the one-round all-gather where every pair of ranks is linked: lane d - 1
    /// sends to rank - d and receives from rank + d; empty otherwise.
    private let directLanes: [SocketLane]
    /// The hierarchical all-reduce's lanes (`HostLayout`), with the ring's codec between hosts
    /// and with the raw one (exact collectives, `--codec auto`'s raw choice); nil where the ring
    /// formed without host links. Gradients go this way when present: the same bits as the flat
    /// ring's.
    private let hostLanes: HostLanes?
    private let hostLanesRaw: HostLanes?
    /// The layout of the host links, if the ring has them.
    public let hostLayout: HostLayout?
    /// Senders of the link between hosts and of the links on the host.
    private let hostSender = JobQueue(name: "ring-host-sender")
    private let localSender = JobQueue(name: "ring-local-sender")
    /// The far links' and host links' connections, closed with the ring.
    private let farConnections: [Connection]
    private var gradientOps: UInt64 = 0
    private var statisticsOps: UInt64 = 0
    /// The coders of the lanes that carry gradients with the ring's codec (round the ring, and
    /// between hosts); none for the raw codec.
    private let codedCoders: [(send: SegmentCoder, receive: SegmentCoder)]

    init(rank: Int, worldSize: Int, right: Connection?, left: Connection?,
         far: [(distance: Int, toward: Connection, from: Connection)] = [], hosts: HostConnections? = nil,
         codec: GradientCodec, level: Int32, segmentFloats: Int) {
        self.rank = rank
        self.worldSize = worldSize
        self.right = right
        self.left = left
        self.codec = codec
        self.level = level
        self.segmentFloats = max(1024, segmentFloats)
        var coded: [(send: SegmentCoder, receive: SegmentCoder)] = []
        if let right, let left {
            let coders = (SegmentCoder(codec: codec, level: level), SegmentCoder(codec: codec, level: level))
            if codec != .none { coded.append(coders) }
            let lane = { (send: Connection, receive: Connection, sender: JobQueue, coders: (send: SegmentCoder, receive: SegmentCoder), position: Int) in
                SocketLane(send: send, receive: receive, sender: sender, coders: coders, position: position, size: worldSize,
                           segmentFloats: max(1024, segmentFloats))
            }
            gradientLane = lane(right, left, sender, coders, rank)
            exactLane = codec == .none ? gradientLane
                : lane(right, left, sender, (SegmentCoder(codec: .none), SegmentCoder(codec: .none)), rank)
            (statisticsLane, bruckLanes, directLanes) = Ring.statisticsLanes(left: left, right: right, far: far, sender: statsSender,
                                                                             rank: rank, worldSize: worldSize, segmentFloats: segmentFloats)
        } else {
            (gradientLane, exactLane, statisticsLane, bruckLanes, directLanes) = (nil, nil, nil, [], [])
        }
        if let hosts {
            let (H, L) = (hosts.layout.hosts, hosts.layout.perHost)
            let floats = max(1024, segmentFloats)
            func hostLane(_ link: (toward: Connection, from: Connection), _ sender: JobQueue, _ codec: GradientCodec,
                          position: Int, size: Int) -> SocketLane {
                let coders = (SegmentCoder(codec: codec, level: level), SegmentCoder(codec: codec, level: level))
                if codec != .none { coded.append(coders) }
                return SocketLane(send: link.toward, receive: link.from, sender: sender, coders: coders,
                                  position: position, size: size, segmentFloats: floats)
            }
            // On the host the lanes are always raw: they carry the ranks' own values, which the
            // flat ring never rounds, over loopback.
            let (localQueue, hostQueue) = (localSender, hostSender)
            let local = hosts.local.map { hostLane($0, localQueue, .none, position: rank % L, size: L) }
            let inter = hostLane(hosts.inter, hostQueue, codec, position: rank / L, size: H)
            let coded = HostLanes(inter: inter, local: local)
            hostLanes = coded
            hostLanesRaw = codec == .none ? coded
                : HostLanes(inter: hostLane(hosts.inter, hostQueue, .none, position: rank / L, size: H), local: local)
            hostLayout = hosts.layout
        } else {
            (hostLanes, hostLanesRaw, hostLayout) = (nil, nil, nil)
        }
        farConnections = far.flatMap { [$0.toward, $0.from] } + (hosts?.all ?? [])
        codedCoders = coded
    }

    /// Seconds the ring's codec spent on gradients: encoding (on the sender threads) and
    /// decoding with the additions (on the collective thread), inside the gradient all-reduces'
    /// time. Zero for the raw codec. Read when the ring is idle (the coders' threads write them).
    public var codecSeconds: (encode: Double, decode: Double) {
        let all = codecTotals
        return (all.encode - codecProbe.encode, all.decode - codecProbe.decode)
    }
    private var codecTotals: (encode: Double, decode: Double) {
        (codedCoders.reduce(0) { $0 + $1.send.encodeSeconds }, codedCoders.reduce(0) { $0 + $1.receive.decodeSeconds })
    }
    /// The codec's seconds in `chooseCodec`'s probe, which is not training.
    private var codecProbe = (encode: 0.0, decode: 0.0)

    deinit { sender.stop(); statsSender.stop(); hostSender.stop(); localSender.stop(); collectives.stop() }

    /// The statistics' lanes: the one round the ring the other way (to the left), and the
    /// all-gathers' lanes over the far links (`bruckLanes`, `directLanes`; empty where the ring
    /// formed without the links they need). All raw, all sending through `sender` (the rounds run
    /// one after another on the training thread, so their sends go out in order), frames of up
    /// to 64 KB on the caller's thread (`inlineFloats`). What goes to the left and over the far
    /// links is statistics (and the ACKs of the gradients coming from the left): marked ahead
    /// of the gradients in the host's queue.
    private static func statisticsLanes(left: Connection, right: Connection, far: [(distance: Int, toward: Connection, from: Connection)],
                                        sender: JobQueue, rank: Int, worldSize: Int, segmentFloats: Int)
        -> (stats: SocketLane, bruck: [SocketLane], direct: [SocketLane])
    {
        left.markLatencySensitive()
        for link in far { link.toward.markLatencySensitive(); link.from.markLatencySensitive() }
        let raw = (send: SegmentCoder(codec: .none), receive: SegmentCoder(codec: .none))
        func lane(_ send: Connection, _ receive: Connection, _ position: Int) -> SocketLane {
            SocketLane(send: send, receive: receive, sender: sender, coders: raw, position: position, size: worldSize,
                       segmentFloats: max(1024, segmentFloats), inlineFloats: 1 << 14)
        }
        let stats = lane(left, right, worldSize - 1 - rank)
        var farLane: [Int: SocketLane] = [:]
        for link in far { farLane[link.distance] = lane(link.from, link.toward, rank) }
        let neighbours = lane(left, right, rank)
        let bruck = Ring.bruckDistances(worldSize), every = Array(2..<max(2, worldSize))
        let formed = { (distances: [Int]) in !far.isEmpty && distances.allSatisfy { farLane[$0] != nil } }
        return (stats, formed(bruck) ? [neighbours] + bruck.map { farLane[$0]! } : [],
                formed(every) ? [neighbours] + every.map { farLane[$0]! } : [])
    }

    /// A ring of one: collectives are identities.
    public static func single() -> Ring {
        Ring(rank: 0, worldSize: 1, right: nil, left: nil, codec: .none, level: 1, segmentFloats: 1 << 18)
    }

    public func close() {
        right?.close()
        left?.close()
        for c in farConnections { c.close() }
        sender.stop()
        statsSender.stop()
        hostSender.stop()
        localSender.stop()
        collectives.stop()
    }

    /// Sums `buffer` over all ranks in place; every rank ends with identical values. With
    /// `average` the sum is divided by the world size; with `exact` it travels uncompressed
    /// whatever the ring's codec.
    ///
    /// With `range`, only that range of `buffer` is summed, cut into the chunks of the whole
    /// buffer, so the values are bit for bit those of summing the whole buffer (`ChunkPlan`).
    ///
    /// It runs on the calling thread; the trainer's entry points (`allReduceGradients`,
    /// `startReducing`) run it on the ring's collective thread, in the order they were called,
    /// so that every rank runs the same collectives in the same order. `allReduceSum`
    /// (SyncBatchNorm's statistics) runs on the caller's thread along the other lane.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>? = nil, average: Bool = false,
                          exact: Bool = false) throws {
        if worldSize > 1 { gradientOps &+= 1 }
        // An exact all-reduce is accounted with the statistics (it is what SyncBatchNorm sends).
        try reduce(on: exact || gradientsRaw ? exactLane : gradientLane, op: gradientOps, buffer, range: range, average: average,
                   statistics: exact)
    }

    private func reduce(on lane: SocketLane?, op: UInt64, _ buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>?,
                        average: Bool, statistics: Bool) throws {
        if let f = failure { throw f }
        let range = range ?? 0..<buffer.count
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "allReduce: range \(range) outside a buffer of \(buffer.count)")
        guard let lane, worldSize > 1, !range.isEmpty, let p = buffer.baseAddress else {
            if average && worldSize > 1 { for i in range { buffer[i] /= Float(worldSize) } }
            return
        }
        let plan = ChunkPlan(n: buffer.count, range: range, ranks: worldSize, segmentFloats: lane.segmentFloats)
        if !statistics, let hosts = lane === gradientLane ? hostLanes : hostLanesRaw, let inter = hosts.inter as? SocketLane {
            // Gradients by host: the flat ring's bits (`hierarchicalAllReduce`); the account
            // counts the link between hosts (the one a network carries).
            let local = hosts.local.compactMap { $0 as? SocketLane }
            try run(on: [inter] + local, counted: [inter], statistics: false) {
                try RingAlgorithms.hierarchicalAllReduce(p, plan, op: op, average: average, over: hosts)
            }
            return
        }
        try run(on: [lane], statistics: statistics) {
            try RingAlgorithms.allReduce(p, plan, op: op, average: average, over: lane)
        }
    }

    /// Runs one collective on `lanes`: on failure the ring is closed (which unblocks the lanes'
    /// senders), the senders drained, and the failure recorded for every later collective; on
    /// success the lanes' bytes and the time go into the account.
    private func run(on lanes: [SocketLane], counted: [SocketLane]? = nil, statistics: Bool, _ body: () throws -> Void) throws {
        func written() -> Int { (counted ?? lanes).reduce(0) { $0 + $1.send.bytesWritten } }
        let before = written()
        let t0 = monotonic()
        do {
            try body()
        } catch {
            left?.close(); right?.close()
            for c in farConnections { c.close() }
            for l in lanes { l.sender.waitAll() }
            fail(error)
            throw error
        }
        statsLock.lock()
        _stats.wireBytes += written() - before
        _stats.rawBytes = sender.reported + statsSender.reported + hostSender.reported - rawOffset
        if statistics {
            let t1 = monotonic()
            _stats.statisticsReduces += 1
            _stats.statisticsSeconds += t1 - t0
            // Bounded for a caller that never marks steps (a step has a few dozen at most).
            if placeOfStep.count < 4096 {
                placeOfStep.append((before: lastStatisticsEnd > 0 ? t0 - lastStatisticsEnd : 0, seconds: t1 - t0))
            }
            lastStatisticsEnd = t1
        } else {
            _stats.gradientReduces += 1
            _stats.gradientSeconds += monotonic() - t0
        }
        statsLock.unlock()
    }

    // MARK: statistics by their place in a step

    /// This step's statistics collectives so far: the seconds since the one before ended (the
    /// compute the ranks could drift apart over) and the seconds each took (mostly waiting for
    /// the slowest rank). `markStep` files them by their count per step.
    private var placeOfStep: [(before: Double, seconds: Double)] = []
    private var lastStatisticsEnd = 0.0
    /// Per count of statistics collectives in a step: the sums by place and the steps summed.
    private var byPlace: [Int: (before: [Double], seconds: [Double], steps: Int)] = [:]

    /// Ends a training step for `statisticsByPlace` (gan-worker calls it after every step).
    public func markStep() {
        statsLock.lock(); defer { statsLock.unlock() }
        let k = placeOfStep.count
        guard k > 0 else { return }
        var acc = byPlace[k] ?? (before: Array(repeating: 0, count: k), seconds: Array(repeating: 0, count: k), steps: 0)
        for (i, p) in placeOfStep.enumerated() { acc.before[i] += p.before; acc.seconds[i] += p.seconds }
        acc.steps += 1
        byPlace[k] = acc
        placeOfStep.removeAll(keepingCapacity: true)
    }

    /// One line for the log: SyncBatchNorm's collectives by their place in a step (over the steps
    /// with the most common count; the first step, which computes its own real-image pass, and
    /// the last may have another), the mean time each took and the mean time before it since
    /// the one before ended. nil without statistics collectives.
    public func statisticsByPlace() -> String? {
        statsLock.lock(); defer { statsLock.unlock() }
        // The most common count; of equally common ones, the larger (the same choice on every call).
        guard let (k, acc) = byPlace.max(by: { ($0.value.steps, $0.key) < ($1.value.steps, $1.key) }) else { return nil }
        let per = Double(acc.steps)
        func list(_ v: [Double]) -> String { v.map { String(format: "%.1f", $0 * 1000 / per) }.joined(separator: " ") }
        return "statistics all-reduces by place in a step (\(acc.steps) step(s) of \(k)): ms each took: \(list(acc.seconds)); "
            + "ms before each, since the one before ended: \(list(acc.before))"
    }

    /// Seconds the training thread has spent waiting on the ring (gradients and statistics):
    /// the part of a step the wire did not hide.
    public var blockedSeconds: Double { blockedLock.lock(); defer { blockedLock.unlock() }; return _blocked }
    private var _blocked = 0.0
    private let blockedLock = NSLock()
    private func blocked<T>(_ body: () throws -> T) rethrows -> T {
        let t0 = monotonic()
        defer { let d = monotonic() - t0; blockedLock.lock(); _blocked += d; blockedLock.unlock() }
        return try body()
    }

    /// One line for the log: what the ring did and how long the training thread waited on it,
    /// with the TCP state of the link to the right neighbour (round trip, congestion window,
    /// retransmissions): where a step's time on the wire went.
    public func summary(steps: Int) -> String {
        let st = stats
        let per = Double(max(1, steps))
        func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000 / per) }
        var line = "ring, per step over \(steps) step(s): blocked \(ms(blockedSeconds)); "
            + "\(String(format: "%.1f", Double(st.gradientReduces) / per)) gradient all-reduce(s) \(ms(st.gradientSeconds)), "
            + "\(String(format: "%.1f", Double(st.statisticsReduces) / per)) statistics all-reduce(s) \(ms(st.statisticsSeconds)); "
            + String(format: "%.2f MB sent", Double(st.wireBytes) / per / 1e6)
        if st.gradientSeconds > 0 {
            line += String(format: " (%.1f MB/s while reducing)", Double(st.wireBytes) / (st.gradientSeconds + st.statisticsSeconds) / 1e6)
        }
        let (encode, decode) = codecSeconds
        if !codedCoders.isEmpty { line += "; codec \(ms(encode + decode)) (encode \(ms(encode)), decode \(ms(decode)))" }
        if let t = right?.tcpInfo() { line += "; TCP to the right: \(t)" }
        if let h = hostLayout { line += "; gradients by host (\(h)), bytes sent: between hosts" }
        return line
    }

    // MARK: GradientReducer, BatchNormSynchronizer

    /// Sums `buffer` over the ranks on the collective thread, after everything started before.
    /// The caller is blocked from the moment it hands the sum over (the collective thread may
    /// start it before the caller is back from the queue).
    public func allReduceGradients(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        blocked {
            let job = collectives.enqueue { [self] in try allReduce(buffer); return 0 }
            collectives.wait(for: job)
        }
        try checkFailure()
    }

    /// Starts summing `range` of `buffer` on the collective thread and returns at once (DDP's
    /// bucket all-reduce, started while backward computes the layers before). Every rank starts
    /// the same ranges in the same order; `finishReducing` waits for them. The sums are bit for
    /// bit those of `allReduceGradients` on the whole buffer.
    public func startReducing(_ buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>) {
        _ = collectives.enqueue { [self] in try allReduce(buffer, range: range); return 0 }
    }

    /// Waits for every range started so far; throws the first failure.
    public func finishReducing() throws {
        blocked { collectives.waitAll() }
        try checkFailure()
    }

    public func checkFailure() throws {
        if let f = failure { throw f }
        if let e = collectives.error { throw e }
    }

    /// SyncBatchNorm's statistics: exact (no lossy codec), small, summed on the caller's thread
    /// along the statistics lane (the other way round the ring), so that one called from inside
    /// backward does not wait for the gradient ranges still being summed. Every rank calls it in
    /// the same order (its training thread's program order).
    ///
    /// A vector of at most one segment (SyncBatchNorm's always are) is gathered whole
    /// (`RingAlgorithms.allGather`) and every rank adds the N vectors in rank order (the same
    /// bits everywhere): N - 1 hops where the reduce-scatter and all-gather take 2 (N - 1), each
    /// a wait in the queue of a link busy with gradients, for a few kilobytes more on the wire.
    public func allReduceSum(_ values: [Float]) -> [Float] {
        guard worldSize > 1, failure == nil, let lane = statisticsLane else { return values }
        let m = values.count
        do {
            if m <= segmentFloats {
                let all = try gather(values)
                // Summed in rank order: the same bits on every rank.
                var sum = Array(all[0..<m])
                for r in 1..<worldSize {
                    let at = r * m
                    for i in 0..<m { sum[i] += all[at + i] }
                }
                return sum
            }
            statisticsOps &+= 1
            let op = statisticsOps
            var v = values
            try blocked {
                try v.withUnsafeMutableBufferPointer {
                    try reduce(on: lane, op: op, $0, range: nil, average: false, statistics: true)
                }
            }
            return v
        } catch {
            // Recorded (`fail`) and surfaced by checkFailure() after the step.
            return values
        }
    }

    /// SyncBatchNorm's per-rank statistics gathered (each rank sends its own slot once; a sum of
    /// zero-padded slots would send N of them), on the caller's thread along the statistics
    /// lanes, as `allReduceSum`. A failure is recorded and surfaced by checkFailure() after the
    /// step; the other ranks' slots are then zeros.
    public func allGatherStatistics(_ mine: [Float]) -> [Float] {
        guard worldSize > 1, failure == nil, statisticsLane != nil, let all = try? gather(mine) else { return ownSlot(mine) }
        return all
    }

    /// Every rank's `mine` in rank order: in one round (every pair linked, up to
    /// `everyPairLinkedUpTo` ranks) or log2 rounds over the far links where the ring has them,
    /// else passed round the statistics lane; vectors longer than a segment go in pieces of
    /// a segment each.
    private func gather(_ mine: [Float]) throws -> [Float] {
        let N = worldSize, m = mine.count
        guard N > 1, let lane = statisticsLane else { return mine }
        if let f = failure { throw f }
        guard m > segmentFloats else {
            statisticsOps &+= 1
            let op = statisticsOps
            return try blocked {
                !directLanes.isEmpty ? try farGather(mine, op: op, direct: true)
                    : bruckLanes.isEmpty ? try ringGather(mine, op: op, on: lane) : try farGather(mine, op: op, direct: false)
            }
        }
        var all = [Float](repeating: 0, count: N * m)
        for lo in stride(from: 0, to: m, by: segmentFloats) {
            let hi = min(m, lo + segmentFloats)
            let part = try gather(Array(mine[lo..<hi]))
            for r in 0..<N { for i in lo..<hi { all[r * m + i] = part[r * (hi - lo) + i - lo] } }
        }
        return all
    }

    /// Every rank's `mine` passed round the statistics lane, in rank order.
    private func ringGather(_ mine: [Float], op: UInt64, on lane: SocketLane) throws -> [Float] {
        let N = worldSize, m = mine.count
        // Freed only after `run` has drained the lane's sender, also on failure.
        let all = UnsafeMutableBufferPointer<Float>.allocate(capacity: N * m)
        defer { all.deallocate() }
        _ = all.initialize(from: repeatElement(0, count: N * m))
        let q = lane.position
        for i in 0..<m { all[q * m + i] = mine[i] }
        try run(on: [lane], statistics: true) {
            try RingAlgorithms.allGather(all.baseAddress!, m, op: op, over: lane)
        }
        // Position along the statistics lane q holds rank N - 1 - q's vector.
        var out = [Float](repeating: 0, count: N * m)
        for r in 0..<N { for i in 0..<m { out[r * m + i] = all[(N - 1 - r) * m + i] } }
        return out
    }

    /// Every rank's `mine` gathered over the far links, in rank order: the vectors of
    /// `ringGather`, in one round where every pair is linked (`direct`), else in ceil(log2 N)
    /// rounds, instead of N - 1 hops.
    private func farGather(_ mine: [Float], op: UInt64, direct: Bool) throws -> [Float] {
        let N = worldSize, m = mine.count
        // Freed only after `run` has drained the lanes' sender, also on failure.
        let held = UnsafeMutableBufferPointer<Float>.allocate(capacity: N * m)
        defer { held.deallocate() }
        _ = held.initialize(from: repeatElement(0, count: N * m))
        for i in 0..<m { held[i] = mine[i] }
        try run(on: direct ? directLanes : bruckLanes, statistics: true) {
            if direct {
                try RingAlgorithms.directAllGather(held.baseAddress!, m, op: op, over: directLanes)
            } else {
                try RingAlgorithms.bruckAllGather(held.baseAddress!, m, op: op, over: bruckLanes)
            }
        }
        // Held index i is rank (rank + i) mod N's vector.
        var out = [Float](repeating: 0, count: N * m)
        for r in 0..<N {
            let at = ((r - rank + N) % N) * m
            for i in 0..<m { out[r * m + i] = held[at + i] }
        }
        return out
    }

    /// Exact mode's gather (maxima of the gradients, per-micro-batch statistics and metrics).
    public func allGather(_ mine: [Float]) throws -> [Float] {
        let all = try gather(mine)
        try checkFailure()
        return all
    }

    /// Exact mode's gradients: the integers summed on the collective thread after every range
    /// started before, over the gradient lane when its codec is lossless (the integers' bits
    /// must arrive as sent), else uncompressed.
    public func allReduceExact(_ buffer: UnsafeMutableBufferPointer<Int64>) throws {
        guard worldSize > 1, let p = buffer.baseAddress, !buffer.isEmpty else { return }
        let job = collectives.enqueue { [self] in
            gradientOps &+= 1
            guard let lane = codec.isLossy || gradientsRaw ? exactLane : gradientLane else { return 0 }
            let plan = RingAlgorithms.integerPlan(count: buffer.count, over: lane)
            let op = gradientOps
            try run(on: [lane], statistics: false) {
                try RingAlgorithms.allReduceIntegers(p, plan, op: op, over: lane)
            }
            return 0
        }
        blocked { collectives.wait(for: job) }
        try checkFailure()
    }

    /// Whether statistics travel by the log2-round all-gather (the ring formed with far links).
    public var gathersInLogRounds: Bool { !bruckLanes.isEmpty }
    /// Whether they travel in one round (every pair of ranks linked).
    public var gathersInOneRound: Bool { !directLanes.isEmpty }

    private func fail(_ error: Error) {
        failureLock.lock()
        if _failure == nil { _failure = error }
        failureLock.unlock()
    }
}

/// `--codec auto`: which of the ring's lossless codec and the raw one moves gradients faster over
/// these links, measured, the same decision on every rank.
public struct CodecChoice: Sendable, CustomStringConvertible {
    /// The codec chosen, the probe's size, and each rank's best seconds per probe all-reduce with
    /// the raw codec and with the ring's.
    public let chosen: GradientCodec
    public let codec: GradientCodec
    public let probeBytes: Int
    public let rawSeconds: [Double]
    public let codecSeconds: [Double]

    /// The raw codec wins where the ranks' summed time with it is lower: every rank sums the
    /// same gathered figures in rank order, so every rank decides alike.
    public static func decide(rawSeconds: [Double], codecSeconds: [Double]) -> Bool {
        rawSeconds.reduce(0, +) < codecSeconds.reduce(0, +)
    }

    public var description: String {
        let raw = rawSeconds.reduce(0, +) / Double(max(1, rawSeconds.count))
        let coded = codecSeconds.reduce(0, +) / Double(max(1, codecSeconds.count))
        return String(format: "codec auto chose %@: an all-reduce of %.1f MB took %.1f ms raw and %.1f ms with %@ (mean over %d ranks)",
                      chosen.rawValue, Double(probeBytes) / 1e6, raw * 1000, coded * 1000, codec.rawValue, rawSeconds.count)
    }
}

extension Ring {
    /// `--codec auto`: all-reduces a probe of `probeFloats` gradient-like values (a fixed
    /// pseudo-random normal sample, small as gradients are) raw and with the ring's codec,
    /// alternately, `rounds` times each; every rank's best time of each is gathered, and the
    /// faster one (`CodecChoice.decide`) carries the gradients from then on. Only a lossless
    /// codec is weighed against raw (a lossy one would change the numbers: it is asked for, not
    /// chosen). Collective: every rank calls it at the same point.
    public func chooseCodec(probeFloats: Int = 1 << 21, rounds: Int = 2) throws -> CodecChoice {
        precondition(!codec.isLossy, "chooseCodec weighs a lossless codec against raw; \(codec.rawValue) is lossy")
        var probe = [Float](repeating: 0, count: probeFloats)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<probeFloats {
            // Box-Muller on a splitmix64 stream: the exponents of a gradient of scale 1e-3.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let u1 = max(Double(z >> 11) / Double(1 << 53), 1e-12), u2 = Double(z & 0x7FF) / 2048
            probe[i] = Float(1e-3 * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
        // The probe is not training: the account is left as it was before it.
        let (saved, savedBlocked, savedRaw) = (stats, blockedSeconds, sender.reported + statsSender.reported + hostSender.reported)
        let savedCodec = codecTotals
        defer {
            let now = codecTotals
            codecProbe = (codecProbe.encode + now.encode - savedCodec.encode, codecProbe.decode + now.decode - savedCodec.decode)
            statsLock.lock()
            _stats = saved
            rawOffset += sender.reported + statsSender.reported + hostSender.reported - savedRaw
            statsLock.unlock()
            blockedLock.lock(); _blocked = savedBlocked; blockedLock.unlock()
        }
        var best = (raw: Double.infinity, coded: Double.infinity)
        for _ in 0..<max(1, rounds) {
            for raw in [true, false] {
                var v = probe
                let t0 = monotonic()
                gradientOps &+= 1
                try v.withUnsafeMutableBufferPointer {
                    try reduce(on: raw ? exactLane : gradientLane, op: gradientOps, $0, range: nil, average: false, statistics: false)
                }
                let dt = monotonic() - t0
                if raw { best.raw = min(best.raw, dt) } else { best.coded = min(best.coded, dt) }
            }
        }
        let all = try allGather([Float(best.raw), Float(best.coded)])
        let rawSeconds = (0..<worldSize).map { Double(all[2 * $0]) }, codecSeconds = (0..<worldSize).map { Double(all[2 * $0 + 1]) }
        gradientsRaw = CodecChoice.decide(rawSeconds: rawSeconds, codecSeconds: codecSeconds)
        return CodecChoice(chosen: activeCodec, codec: codec, probeBytes: probeFloats * 4, rawSeconds: rawSeconds, codecSeconds: codecSeconds)
    }
}
