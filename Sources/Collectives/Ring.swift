import DataParallel
import Foundation

/// The ring's sender: runs send jobs in order on its own thread, so a rank receives (and adds)
/// the next chunk while the previous ones are still going out.
final class SendQueue: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [() throws -> Int] = []
    private var queued = 0
    private var completed = 0
    private var stopping = false
    private(set) var error: Error?
    private(set) var rawBytes = 0

    init(name: String) {
        let t = Thread { [self] in self.loop() }   // the thread keeps the queue until stop()
        t.name = name
        t.start()
    }

    private func loop() {
        while true {
            cond.lock()
            while jobs.isEmpty && !stopping { cond.wait() }
            if jobs.isEmpty { cond.unlock(); return }
            let job = jobs.removeFirst()
            let failed = error != nil
            cond.unlock()
            var sent = 0
            var err: Error?
            if !failed { do { sent = try job() } catch { err = error } }
            cond.lock()
            if let e = err, error == nil { error = e }
            rawBytes += sent
            completed += 1
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Queues a job (returning the raw bytes it sent); returns its number.
    func enqueue(_ job: @escaping () throws -> Int) -> Int {
        cond.lock()
        defer { cond.unlock() }
        if stopping {
            // The ring was closed (a stop from the coordinator): the thread may be gone, so the
            // job fails here rather than wait for it forever.
            if error == nil { error = NetError("ring", "the ring was closed") }
            queued += 1
            completed += 1
            return queued
        }
        jobs.append(job)
        queued += 1
        cond.broadcast()
        return queued
    }

    /// Waits until job `n` (and all before it) has run.
    func wait(for n: Int) {
        cond.lock()
        while completed < n { cond.wait() }
        cond.unlock()
    }

    func waitAll() {
        cond.lock()
        let n = queued
        cond.unlock()
        wait(for: n)
    }

    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }
}

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

/// A ring of workers over TCP: each rank sends to rank + 1 and receives from rank - 1.
///
/// `allReduce` is a reduce-scatter followed by an all-gather (as gloo's ring all-reduce): the
/// buffer is cut into one chunk per rank; in N - 1 steps every rank passes a chunk on and adds
/// the one it receives, leaving each rank owning one fully summed chunk; N - 1 more steps pass
/// the summed chunks round. Every chunk moves as segments, each a frame, encoded by the codec on
/// the sender's thread while the previous segment is on the wire and the receiver decodes and
/// adds. Each rank sends 2 (N - 1) / N of the buffer in all: the bandwidth-optimal amount.
public final class Ring: GradientReducer, BatchNormSynchronizer, @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    /// The gradients' codec, fixed when the ring forms (every rank must use the same one).
    public let codec: GradientCodec
    public let level: Int32
    /// Floats per segment frame.
    public let segmentFloats: Int
    /// What the ring has moved so far (both lanes).
    public var stats: RingStats { statsLock.lock(); defer { statsLock.unlock() }; return _stats }
    private var _stats = RingStats()
    private let statsLock = NSLock()
    /// The first network failure; after it every collective is a no-op and training stops.
    public var failure: Error? {
        failureLock.lock(); defer { failureLock.unlock() }
        return _failure
    }
    private var _failure: Error?
    private let failureLock = NSLock()

    let right: Connection?
    let left: Connection?
    private let sender = SendQueue(name: "ring-sender")
    /// The sender of the statistics lane (frames to the left neighbour).
    private let statsSender = SendQueue(name: "ring-stats-sender")
    /// Runs the collectives (`allReduce` calls) one after another on a thread of their own, so
    /// gradient ranges are summed while backward goes on (`startReducing`).
    private let collectives = SendQueue(name: "ring-collectives")

    /// The codec's two ends (encoding on the sender thread, decoding on the caller's), and the
    /// raw codec's for exact collectives (SyncBatchNorm statistics): made once, at formation.
    private let coders: (send: SegmentCoder, receive: SegmentCoder)
    private let exactCoders: (send: SegmentCoder, receive: SegmentCoder)
    /// The statistics lane's coders (raw): used on the training thread, apart from the others.
    private let statsCoders = (send: SegmentCoder(codec: .none), receive: SegmentCoder(codec: .none))

    /// One direction round the ring. The gradients' lane sends to the right and receives from
    /// the left; SyncBatchNorm's statistics go the other way round, on the other direction of the
    /// same two connections (each TCP direction is a stream of its own), so that a statistics
    /// all-reduce called inside backward never waits behind gradient buckets still on the wire.
    /// `rank` is this rank's position along the lane (N - 1 - rank on the reversed one).
    struct Lane {
        let send: Connection
        let receive: Connection
        let sender: SendQueue
        let rank: Int
        let op: UInt64
    }
    private var gradientOps: UInt64 = 0
    private var statisticsOps: UInt64 = 0

    init(rank: Int, worldSize: Int, right: Connection?, left: Connection?, codec: GradientCodec, level: Int32, segmentFloats: Int) {
        self.rank = rank
        self.worldSize = worldSize
        self.right = right
        self.left = left
        self.codec = codec
        self.level = level
        self.segmentFloats = max(1024, segmentFloats)
        coders = (SegmentCoder(codec: codec, level: level), SegmentCoder(codec: codec, level: level))
        exactCoders = codec == .none ? coders : (SegmentCoder(codec: .none), SegmentCoder(codec: .none))
    }

    deinit { sender.stop(); statsSender.stop(); collectives.stop() }

    /// A ring of one: collectives are identities.
    public static func single() -> Ring {
        Ring(rank: 0, worldSize: 1, right: nil, left: nil, codec: .none, level: 1, segmentFloats: 1 << 18)
    }

    /// Forms the ring: accepts the left neighbour on `listener` while connecting to the right
    /// one at `rightAddress`; both directions authenticate mutually with the shared token, and
    /// every frame after that carries a tag (`Handshake`). Handshakes on the listener run
    /// concurrently under a hard deadline (`Admissions`), so strangers and idle connections there
    /// are dropped without delaying the neighbour; a peer that proves the token but is not the
    /// expected neighbour (a stale rank of an earlier formation) gets an authenticated refusal.
    public static func form(rank: Int, worldSize: Int, listener: Listener, rightAddress: (String, UInt16), auth: Authenticator,
                            codec: GradientCodec, level: Int32 = 1, segmentFloats: Int = 1 << 18, timeout: Double,
                            handshakeTimeout: Double = 5, log: @escaping @Sendable (String) -> Void = { _ in }) throws -> Ring {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize)
        if worldSize == 1 { return single() }
        let leftRank = (rank - 1 + worldSize) % worldSize, rightRank = (rank + 1) % worldSize
        final class Box: @unchecked Sendable { var conn: Connection?; var error: Error? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let admissions = Admissions(listener: listener, claim: .ringHello, as: RingHello.self, auth: auth, role: "ring",
                                    wrongToken: "ring handshake refused: wrong token", handshakeTimeout: handshakeTimeout,
                                    ioTimeout: timeout, log: log)
        let acceptor = Thread {
            defer { done.signal() }
            let deadline = monotonic() + timeout
            while monotonic() < deadline {
                guard let a = admissions.next(timeout: min(1, max(0.01, deadline - monotonic()))) else {
                    if admissions.isStopped { return }   // the other direction failed
                    continue
                }
                let h = a.claim
                guard h.rank == leftRank, h.worldSize == worldSize, h.to == rank else {
                    let why = "ring handshake refused: rank \(rank) of \(worldSize) expects rank \(leftRank), not rank \(h.rank) of \(h.worldSize) (for rank \(h.to))"
                    log("\(a.conn.peer): \(why)")
                    try? a.conn.send(.reject, bytes: Array(why.utf8))
                    a.conn.close()
                    continue
                }
                try? a.conn.send(.welcome, bytes: [])   // the ring's own admission (authenticated)
                box.conn = a.conn
                return
            }
            box.error = NetError("ring listener :\(listener.port)", "rank \(leftRank) did not connect within \(Int(timeout)) s")
        }
        acceptor.start()
        let r: Connection
        do {
            r = try Handshake.dial(rightAddress.0, rightAddress.1, name: "rank \(rightRank) at \(rightAddress.0):\(rightAddress.1)",
                                   claim: .ringHello, RingHello(rank: rank, worldSize: worldSize, to: rightRank), auth: auth, role: "ring",
                                   within: timeout, ioTimeout: timeout, handshakeTimeout: handshakeTimeout)
            // The right neighbour's own admission: a welcome, or an authenticated reject.
            _ = try r.receive(.welcome, maxPayload: 0)
        } catch {
            admissions.stop()
            done.wait()
            box.conn?.close()
            throw error
        }
        done.wait()
        admissions.stop()
        if let e = box.error { r.close(); throw e }
        return Ring(rank: rank, worldSize: worldSize, right: r, left: box.conn!, codec: codec, level: level, segmentFloats: segmentFloats)
    }

    struct RingHello: Codable, Sendable { var rank: Int; var worldSize: Int; var to: Int }

    public func close() {
        right?.close()
        left?.close()
        sender.stop()
        statsSender.stop()
        collectives.stop()
    }

    /// Chunk c of a buffer of n floats: contiguous, sizes differing by at most one (the first
    /// n % worldSize chunks take one more).
    func chunk(_ c: Int, _ n: Int) -> Range<Int> {
        let base = n / worldSize, extra = n % worldSize
        let start = c * base + min(c, extra)
        return start..<(start + base + (c < extra ? 1 : 0))
    }

    /// What one all-reduce covers: `range` of a buffer of `n` floats, cut by the whole buffer's
    /// chunks. Because an element's chunk (and so the order in which the ranks' values are added
    /// into it) depends only on `n`, summing a buffer range by range gives bit for bit the sums
    /// of summing it whole.
    struct Span { let n: Int; let range: Range<Int> }

    /// Chunk c of `span`: the whole buffer's chunk c clamped to the span's range (maybe empty).
    func chunk(_ c: Int, _ span: Span) -> Range<Int> {
        let whole = chunk(c, span.n)
        let lo = min(max(whole.lowerBound, span.range.lowerBound), span.range.upperBound)
        let hi = max(min(whole.upperBound, span.range.upperBound), lo)
        return lo..<hi
    }

    private func tag(_ lane: Lane, _ phase: UInt64, _ step: Int, _ seg: Int) -> UInt64 {
        (lane.op << 24) | (phase << 23) | (UInt64(step) << 12) | UInt64(seg & 0xFFF)
    }

    /// Floats [lo, lo + m) of segment `k` of chunk `c`.
    private func segment(_ c: Int, _ n: Span, _ k: Int) -> (lo: Int, m: Int) {
        let range = chunk(c, n)
        let lo = range.lowerBound + k * segmentFloats
        return (lo, max(0, min(segmentFloats, range.upperBound - lo)))
    }

    /// Segments of chunk `c`: none for an empty chunk (the same on both ends of every link, which
    /// cut the same span).
    private func segments(_ c: Int, _ n: Span) -> Int { (chunk(c, n).count + segmentFloats - 1) / segmentFloats }

    /// Queues segment `k` of chunk `c` for the next rank along the lane (sent in order on the
    /// lane's sender thread).
    private func queueSend(_ lane: Lane, _ p: UnsafeMutablePointer<Float>, _ n: Span, chunk c: Int, segment k: Int, phase: UInt64, step: Int,
                           enc: SegmentCoder) {
        let out = lane.send
        let (lo, m) = segment(c, n, k)
        let t = tag(lane, phase, step, k)
        _ = lane.sender.enqueue {
            try enc.send(p + lo, m, as: .ringSegment, tag: t, over: out)
            return m * 4
        }
    }

    /// Receives segment `k` of chunk `c` from the previous rank along the lane and adds it into
    /// (or stores it in) the buffer.
    private func receiveSegment(_ lane: Lane, _ p: UnsafeMutablePointer<Float>, _ n: Span, chunk c: Int, segment k: Int, phase: UInt64, step: Int,
                                add: Bool, dec: SegmentCoder) throws {
        let (lo, m) = segment(c, n, k)
        try receiveFrame(lane, tag: tag(lane, phase, step, k), m, into: p + lo, add: add, dec: dec)
    }

    /// Reads the next frame along the lane, which must be the ring segment tagged `t`, and
    /// decodes its m floats into (or adds them to) `dst`.
    private func receiveFrame(_ lane: Lane, tag t: UInt64, _ m: Int, into dst: UnsafeMutablePointer<Float>, add: Bool,
                              dec: SegmentCoder) throws {
        let from = lane.receive
        let (type, got, length, checksum) = try from.readHeader(maxPayload: 16 + segmentFloats * 8)
        guard type == .ringSegment else { throw NetError(from.peer, "expected a ring segment, got \(type)") }
        guard got == t else {
            throw NetError(from.peer, "out-of-order ring segment (tag \(got), expected \(t)): the ranks disagree on the collective")
        }
        try dec.receive(length: length, checksum: checksum, from: from, m, into: dst, add: add)
    }

    /// Adds one collective to the ring's account: bytes the lane sent since `before`, and its time.
    private func account(_ lane: Lane, sentSince before: Int, seconds: Double, statistics: Bool) {
        statsLock.lock()
        _stats.wireBytes += lane.send.bytesWritten - before
        _stats.rawBytes = sender.rawBytes + statsSender.rawBytes
        if statistics {
            _stats.statisticsReduces += 1
            _stats.statisticsSeconds += seconds
        } else {
            _stats.gradientReduces += 1
            _stats.gradientSeconds += seconds
        }
        statsLock.unlock()
    }

    /// Sums `buffer` over all ranks in place; every rank ends with identical values. With
    /// `average` the sum is divided by the world size; with `exact` it travels uncompressed
    /// whatever the ring's codec.
    ///
    /// The steps are pipelined by segment: the chunk a rank receives at one step is the chunk it
    /// sends at the next, so each received segment is queued for sending as soon as it is added
    /// (or, at the last reduce-scatter step, as soon as it is final), while later segments are
    /// still arriving.
    ///
    /// With `range`, only that range of `buffer` is summed, cut into the chunks of the whole
    /// buffer, so the values are bit for bit those of summing the whole buffer (see `Span`).
    ///
    /// It runs on the calling thread; the trainer's entry points (`allReduceGradients`,
    /// `startReducing`) run it on the ring's collective thread, in the order they were called,
    /// so that every rank runs the same collectives in the same order. `allReduceSum`
    /// (SyncBatchNorm's statistics) runs on the caller's thread along the other lane.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>? = nil, average: Bool = false,
                          exact: Bool = false) throws {
        guard worldSize > 1 else { return try reduce(on: nil, buffer, range: range, average: average, exact: exact) }
        gradientOps &+= 1
        try reduce(on: Lane(send: right!, receive: left!, sender: sender, rank: rank, op: gradientOps),
                   buffer, range: range, average: average, exact: exact)
    }

    private func reduce(on lane: Lane?, _ buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>?, average: Bool,
                        exact: Bool, statistics: Bool = false) throws {
        if let f = failure { throw f }
        let range = range ?? 0..<buffer.count
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "allReduce: range \(range) outside a buffer of \(buffer.count)")
        let n = Span(n: buffer.count, range: range)
        guard let lane, worldSize > 1, !range.isEmpty, let p = buffer.baseAddress else {
            if average && worldSize > 1 { for i in range { buffer[i] /= Float(worldSize) } }
            return
        }
        let (enc, dec) = statistics ? statsCoders : exact ? exactCoders : coders
        let sender = lane.sender
        let before = lane.send.bytesWritten
        let t0 = monotonic()
        let N = worldSize, r = lane.rank
        let inv = 1 / Float(N)
        do {
            // Reduce-scatter step 0 sends chunk r as it is.
            for k in 0..<segments(r, n) { queueSend(lane, p, n, chunk: r, segment: k, phase: 0, step: 0, enc: enc) }
            for s in 0..<(N - 1) {
                let rc = (r - s - 1 + 2 * N) % N
                for k in 0..<segments(rc, n) {
                    try receiveSegment(lane, p, n, chunk: rc, segment: k, phase: 0, step: s, add: true, dec: dec)
                    if s < N - 2 {
                        queueSend(lane, p, n, chunk: rc, segment: k, phase: 0, step: s + 1, enc: enc)
                    } else {
                        // Chunk r + 1 is now final here: scale and round it as the codec will,
                        // then it opens the all-gather.
                        let (lo, m) = segment(rc, n, k)
                        if average { for i in lo..<(lo + m) { p[i] *= inv } }
                        SegmentCoder.quantize(p + lo, m, enc.codec)
                        queueSend(lane, p, n, chunk: rc, segment: k, phase: 1, step: 0, enc: enc)
                    }
                }
                if let e = sender.error { throw e }
            }
            for s in 0..<(N - 1) {
                let rc = (r - s + N) % N
                for k in 0..<segments(rc, n) {
                    try receiveSegment(lane, p, n, chunk: rc, segment: k, phase: 1, step: s, add: false, dec: dec)
                    if s < N - 2 { queueSend(lane, p, n, chunk: rc, segment: k, phase: 1, step: s + 1, enc: enc) }
                }
                if let e = sender.error { throw e }
            }
            // The buffer is the caller's again only when every send from it has gone out.
            sender.waitAll()
            if let e = sender.error { throw e }
        } catch {
            left?.close(); right?.close()   // unblock the sender
            sender.waitAll()
            fail(error)
            throw error
        }
        account(lane, sentSince: before, seconds: monotonic() - t0, statistics: exact)
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
        if let t = right?.tcpInfo() { line += "; TCP to the right: \(t)" }
        return line
    }

    // MARK: GradientReducer, BatchNormSynchronizer

    /// Sums `buffer` over the ranks on the collective thread, after everything started before.
    public func allReduceGradients(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        let job = collectives.enqueue { [self] in try allReduce(buffer); return 0 }
        blocked { collectives.wait(for: job) }
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
    /// A vector of at most one segment (SyncBatchNorm's always are) is gathered whole instead:
    /// in N - 1 steps each rank passes on the vector it received, so every rank holds all N and
    /// adds them in rank order (the same bits everywhere). That is N - 1 hops where the
    /// reduce-scatter and all-gather take 2 (N - 1), each a wait in the queue of a link busy
    /// with gradients, for a few kilobytes more on the wire.
    public func allReduceSum(_ values: [Float]) -> [Float] {
        var v = values
        guard worldSize > 1, failure == nil else { return values }
        statisticsOps &+= 1
        let lane = Lane(send: left!, receive: right!, sender: statsSender, rank: worldSize - 1 - rank, op: statisticsOps)
        do {
            try blocked {
                if v.count <= segmentFloats {
                    v = try gatherSum(on: lane, values)
                } else {
                    try v.withUnsafeMutableBufferPointer { try reduce(on: lane, $0, range: nil, average: false, exact: true, statistics: true) }
                }
            }
        } catch {
            // Recorded (`fail`) and surfaced by checkFailure() after the step.
            return values
        }
        return v
    }

    /// Every rank's `mine` passed round the statistics lane (rank r receives rank r + 1's, then
    /// r + 2's, ...), summed in rank order.
    private func gatherSum(on lane: Lane, _ mine: [Float]) throws -> [Float] {
        let N = worldSize, m = mine.count
        let t0 = monotonic()
        let before = lane.send.bytesWritten
        var all = [[Float]](repeating: [], count: N)
        all[rank] = mine
        do {
            for s in 0..<(N - 1) {
                // Step s sends what step s - 1 received (this rank's own vector first).
                let out = all[(rank + s) % N]
                let t = tag(lane, 1, s, 0)
                let send = lane.send, enc = statsCoders.send
                _ = lane.sender.enqueue {
                    try out.withUnsafeBufferPointer { try enc.send($0.baseAddress!, m, as: .ringSegment, tag: t, over: send) }
                    return m * 4
                }
                var got = [Float](repeating: 0, count: m)
                try got.withUnsafeMutableBufferPointer {
                    try receiveFrame(lane, tag: t, m, into: $0.baseAddress!, add: false, dec: statsCoders.receive)
                }
                all[(rank + s + 1) % N] = got
                if let e = lane.sender.error { throw e }
            }
            lane.sender.waitAll()
            if let e = lane.sender.error { throw e }
        } catch {
            left?.close(); right?.close()
            lane.sender.waitAll()
            fail(error)
            throw error
        }
        var sum = all[0]
        for r in 1..<N { for i in 0..<m { sum[i] += all[r][i] } }
        account(lane, sentSince: before, seconds: monotonic() - t0, statistics: true)
        return sum
    }

    private func fail(_ error: Error) {
        failureLock.lock()
        if _failure == nil { _failure = error }
        failureLock.unlock()
    }
}
