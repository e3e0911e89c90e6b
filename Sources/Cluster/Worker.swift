import Collectives
import Datasets
import Foundation
import GAN
import Logging
import NN
import Tensors

/// A bounded hand-off of shards from the coordinator's reader thread to the training thread.
final class ShardQueue: BatchSource, @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [(BatchHeader, [UInt8])] = []
    private var closedReason: String?
    private var lastSampler: EpochSampler
    private var endStep: Int?
    let imageSize: Int
    let timeout: Double
    /// Seconds since the coordinator was last heard (any frame, its heartbeats included).
    let silence: @Sendable () -> Double

    init(initial: EpochSampler, imageSize: Int, timeout: Double, silence: @escaping @Sendable () -> Double) {
        lastSampler = initial
        self.imageSize = imageSize
        self.timeout = timeout
        self.silence = silence
    }

    func push(_ h: BatchHeader, _ px: [UInt8]) {
        cond.lock(); items.append((h, px)); cond.broadcast(); cond.unlock()
    }

    /// No more shards: the training thread gets the ones already queued, then `reason` as a
    /// `WorkerStop`; with `discard`, the queued ones are dropped and it gets the stop at once.
    func close(_ reason: String, discard: Bool = false) {
        cond.lock()
        if closedReason == nil { closedReason = reason }
        if discard { items.removeAll() }
        cond.broadcast()
        cond.unlock()
    }

    func nextShard() throws -> (images: Tensor, positions: [Int]) {
        cond.lock()
        defer { cond.unlock() }
        // A slow rank holds every shard back (they come `--prefetch` steps ahead of the slowest):
        // the wait lasts while the coordinator is heard from, and ends `timeout` s after its
        // last word (a coordinator that heartbeats but never sends a shard is a stop of its own).
        while items.isEmpty && closedReason == nil {
            let quiet = silence()
            if quiet >= timeout {
                throw NetError("coordinator", "no batch arrived, and nothing else from the coordinator, within \(Int(timeout)) s")
            }
            _ = cond.wait(until: Date().addingTimeInterval(min(1, timeout - quiet)))
        }
        if items.isEmpty, let r = closedReason { throw WorkerStop(reason: r) }
        let (h, px) = items.removeFirst()
        if let s = h.sampler { lastSampler = s }
        if h.last == true { endStep = h.step }
        let ds = ImageDataset(pixels: px, count: h.positions.count, height: h.height, width: h.width,
                              labels: [UInt8](repeating: 0, count: h.positions.count), source: "coordinator")
        return (batch(ds, indices: Array(0..<h.positions.count), size: imageSize), h.positions)
    }

    /// The step the coordinator marked as the run's last (a time limit), once its shard is taken.
    var lastStep: Int? {
        cond.lock(); defer { cond.unlock() }
        return endStep
    }

    var samplerState: EpochSampler {
        cond.lock(); defer { cond.unlock() }
        return lastSampler
    }

    func restore(_ sampler: EpochSampler) {
        cond.lock(); lastSampler = sampler; cond.unlock()
    }
}

/// The coordinator refused this worker's claim with a reason (its rank is taken or out of
/// range, or this process was declared dead and is not readmitted): final, not retried.
/// `gan-worker` exits with `exitStatus`.
public struct WorkerRefused: Error, CustomStringConvertible {
    public let peer: String
    public let reason: String
    /// The exit status of a refused worker (documented in `gan-worker --help`).
    public static let exitStatus: Int32 = 3
    public var description: String { "\(peer) refused this worker: \(reason)" }
}

/// The coordinator told this worker to stop (or the connection to it ended).
struct WorkerStop: Error, CustomStringConvertible {
    let reason: String
    var reform = false
    /// The coordinator was asked to stop before this formation trained a step (during the ring's
    /// formation): the worker ends cleanly.
    var interrupted = false
    /// The connection to the coordinator ended (it died, or the network failed) rather than the
    /// coordinator saying stop: the worker may wait for a restarted one (`--rejoin-timeout`).
    var lost = false
    /// What ended the connection, for the rejoin's messages (a lost coordinator).
    var cause = ""
    var description: String { reason }
}

public struct WorkerOptions: Sendable {
    public var rank: Int
    public var coordinatorHost: String
    public var coordinatorPort: UInt16
    public var ringHost: String = WorkerOptions.anyAddress
    public var ringPort: UInt16 = 0
    /// The address other workers should use to reach this one (defaults to ringHost).
    public var advertiseHost: String?
    public var token: String
    /// Seconds the first join keeps trying to reach the coordinator (`--connect-timeout`).
    public var connectTimeout = WorkerOptions.defaultConnectTimeout
    /// Seconds to keep trying to reach a coordinator that was lost (it died or the network
    /// failed), so that a restarted one (`--resume auto`) is rejoined; 0: exit at once.
    public var rejoinTimeout = WorkerOptions.defaultRejoinTimeout
    public static let defaultConnectTimeout: Double = 120
    /// The ring listener's default bind address: the advertised address only (`ringAddresses`).
    public static let anyAddress = "0.0.0.0"
    public static let defaultRejoinTimeout: Double = 120
    /// Floats per gradient bucket summed during backward (`DataParallelSchedule.bucketFloats`;
    /// gan-worker: `RINGGAN_BUCKET_MB`); nil: the schedule's default.
    public var bucketFloats: Int?
    /// Whether the next step's real-image pass is computed under the generator's all-reduce
    /// (`DataParallelSchedule.overlapsNextRealPass`; gan-worker: `RINGGAN_OVERLAP=0` turns it off).
    public var overlapsRealPass = true
    /// The machine this worker runs on, for the hierarchical all-reduce (`gan-worker --node`);
    /// nil: its advertised ring address's host.
    public var node: String?
    public init(rank: Int, coordinatorHost: String, coordinatorPort: UInt16, token: String) {
        self.rank = rank
        self.coordinatorHost = coordinatorHost
        self.coordinatorPort = coordinatorPort
        self.token = token
    }
}

/// One worker process: rendezvous with the coordinator, form the ring, train on the shards it
/// is sent; after a re-formation, do it again. Returns when the run is finished.
public final class WorkerProcess {
    let options: WorkerOptions
    var log: Logger
    let auth: Authenticator
    var advertise = ""

    public init(options: WorkerOptions, logger: Logger) throws {
        self.options = options
        log = logger
        auth = try Authenticator(token: options.token, source: "the worker's token")
    }

    /// The address ring neighbours are told to reach this worker at: --advertise, else
    /// --ring-host unless it is the wildcard, else the address this host reaches the coordinator
    /// from. The ring listener binds that address (not every interface), unless --ring-host names
    /// one.
    func ringAddresses() throws -> (advertise: String, bind: String) {
        let advertise = try options.advertiseHost
            ?? (options.ringHost == WorkerOptions.anyAddress ? localAddress(toward: options.coordinatorHost, options.coordinatorPort) : options.ringHost)
        return (advertise, options.ringHost == WorkerOptions.anyAddress ? advertise : options.ringHost)
    }

    public func run() throws {
        ignoreSigpipe()
        let (advertise, bind) = try ringAddresses()
        let ringListener: Listener
        do { ringListener = try Listener(host: bind, port: options.ringPort) } catch {
            throw NetError("ring listener", "\(error); the ring listener binds the advertised address \(bind) unless --ring-host names another (e.g. 0.0.0.0)")
        }
        log.info("ring listener on \(bind):\(ringListener.port), advertised as \(advertise)")
        self.advertise = advertise
        var rejoin: (since: Double, cause: String)?
        while true {
            do {
                try session(ringListener, rejoin: rejoin)
                return
            } catch let s as WorkerStop where s.interrupted {
                log.notice("the coordinator stopped the run while the ring formed (\(s.reason)); nothing was trained in this formation")
                return
            } catch let s as WorkerStop where s.reform {
                log.notice("the coordinator is re-forming the ring (\(s.reason)); rejoining")
                rejoin = nil
                continue
            } catch let s as WorkerStop where s.lost && options.rejoinTimeout > 0 {
                // Everything of the session is torn down by now (its ring, threads and replica);
                // the next one starts from the new coordinator's start message.
                log.warning("\(s.reason); trying to rejoin the coordinator at \(coordinatorAddress) for up to \(seconds(options.rejoinTimeout)) (--rejoin-timeout)")
                rejoin = (monotonic(), s.cause)
                continue
            }
        }
    }

    var coordinatorAddress: String { "\(options.coordinatorHost):\(options.coordinatorPort)" }

    /// One membership of the ring, from rendezvous to finish (or a stop), in stages that run top
    /// to bottom: join the coordinator, build the replica and the ring, listen for shards and
    /// notices (and send heartbeats), train reporting every step, finish.
    func session(_ ringListener: Listener, rejoin: (since: Double, cause: String)?) throws {
        let (conn, start) = try join(ringListener, rejoin: rejoin)
        defer { conn.close() }
        // Heartbeats from the start on: loading a checkpoint and forming the ring take time, and
        // a neighbour held up by strangers on its port must not look dead meanwhile.
        let notices = Notices()
        defer { notices.end() }
        heartbeat(conn, start, notices)
        // The coordinator is listened to from here on, also while the ring forms: a stop (an
        // interrupt, a re-formation) or its loss ends a formation that waits for a peer at once.
        let formation = RingHolder()
        defer { formation.close() }
        let (trainer, queue): (GANTrainer, ShardQueue)
        do { (trainer, queue) = try build(start, notices) } catch { throw coordinatorsWord(notices, after: error) }
        listen(conn, start, queue, notices, formation)
        let ring: Ring
        do { ring = try formRing(start, ringListener, trainer, formation) } catch { throw coordinatorsWord(notices, after: error) }
        // The coordinator knows the formation is over (a stop now finishes the steps sent).
        try? conn.send(.heartbeat, bytes: Array(Self.ringFormed.utf8))
        try train(trainer, ring, conn, start, notices)
        try finish(conn, start, trainer, notices)
    }

    /// Join: connect to the coordinator, prove the token, wait for the start message and check it.
    /// After the coordinator was lost (`rejoin`), the connection is retried with backoff until
    /// `--rejoin-timeout` has passed since the loss.
    func join(_ ringListener: Listener, rejoin: (since: Double, cause: String)?) throws -> (Connection, StartMessage) {
        let hello = HelloMessage(rank: options.rank, ringHost: advertise, ringPort: ringListener.port, pid: getpid(), node: options.node, heartbeats: true)
        // Mutual: the coordinator proves the token too, before anything it sends is read.
        let conn = try rejoin.map { try redial(hello, since: $0.since, lost: $0.cause) } ?? dial(hello)
        do {
            log.info("joined the \(conn.peer) as rank \(options.rank); waiting for the start")   // peer: "coordinator HOST:PORT"
            conn.timeout = ControlTimeouts.waiting   // the start waits for every worker to join
            let f: Frame
            do { f = try conn.receive(maxPayload: ControlLimits.message) } catch {
                // The coordinator went away before the start (it died during its rendezvous).
                throw WorkerStop(reason: "lost the coordinator before the start: \(error)", lost: true, cause: why(error))
            }
            // A refusal of the claim (rank taken, out of range) is the coordinator's answer: final.
            if f.type == .reject { throw WorkerRefused(peer: conn.peer, reason: String(decoding: f.payload, as: UTF8.self)) }
            if f.type == .failure { throw NetError(conn.peer, String(decoding: f.payload, as: UTF8.self)) }
            guard f.type == .start else { throw NetError(conn.peer, "expected a start frame, got \(f.type)") }
            let start = try f.decode(StartMessage.self, from: conn.peer)
            try start.check(peer: conn.peer)
            conn.timeout = start.timeout
            log[metadataKey: "rank"] = "\(start.rank)"
            return (conn, start)
        } catch {
            conn.close()
            throw error
        }
    }

    /// After a failed build or formation (the ring did not form): when the coordinator has
    /// meanwhile said stop, or is gone (the reader thread records both), that is what ended the
    /// session (re-form, end, or rejoin a restarted one); when it says nothing for 2 s, the
    /// failure's own error.
    func coordinatorsWord(_ notices: Notices, after error: Error) -> Error {
        let until = monotonic() + 2
        while monotonic() < until {
            if let s = notices.stopped { return s }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return notices.stopped ?? error
    }

    /// The heartbeat payload a worker sends once its ring has formed.
    public static let ringFormed = "ring formed"

    /// The ring of a session: set once formed; closed by a stop or a lost coordinator, which
    /// also cancels a formation still in progress (`Ring.form`'s `cancelled`).
    final class RingHolder: @unchecked Sendable {
        private let lock = NSLock()
        private var ring: Ring?
        private var closed = false
        var isClosed: Bool { lock.lock(); defer { lock.unlock() }; return closed }
        /// Keeps `r`; false (and `r` closed) when the holder was closed meanwhile.
        func set(_ r: Ring) -> Bool {
            lock.lock()
            if closed { lock.unlock(); r.close(); return false }
            ring = r
            lock.unlock()
            return true
        }
        func close() {
            lock.lock(); closed = true; let r = ring; lock.unlock()
            r?.close()
        }
    }

    /// The first join: the coordinator's address, tried until `--connect-timeout` seconds have
    /// passed (waits of 0.25 s doubling up to 1 s), so that workers may start before their
    /// coordinator. The wait is said at once and at every retry; the timeout names the flag.
    func dial(_ hello: HelloMessage) throws -> Connection {
        let since = monotonic(), limit = options.connectTimeout
        log.info("waiting for the coordinator at \(coordinatorAddress) (up to \(seconds(limit)), --connect-timeout)")
        let address = coordinatorAddress
        let (c, attempts) = try dialRepeatedly(hello, since: since, limit: limit, maxWait: 1, retry: { [log] attempt, why, next, left in
            log.info("\("the coordinator at \(address) is not there yet (attempt \(attempt): \(why)); trying again in \(seconds(next)), ")\(seconds(left)) left of --connect-timeout")
        }, giveUp: { attempts, why in
            "did not answer within \(seconds(limit)) (--connect-timeout); \(attempts) attempt(s), the last: \(why)"
        })
        if attempts > 1 { log.notice("reached the coordinator at \(coordinatorAddress) after \(seconds(monotonic() - since)) (attempt \(attempts))") }
        return c
    }

    /// Rejoin: the coordinator at the same address, tried again and again (waits of 0.25 s
    /// doubling up to 5 s) until `--rejoin-timeout` seconds have passed since it was lost at
    /// `since`. The handshake is the first join's (same rank, this worker's ring address).
    func redial(_ hello: HelloMessage, since: Double, lost cause: String) throws -> Connection {
        let (c, attempt) = try dialRepeatedly(hello, since: since, limit: options.rejoinTimeout, maxWait: 5, retry: { [log] attempt, why, next, left in
            log.info("rejoin attempt \(attempt): \(why); next in \(seconds(next)), \(seconds(left)) left")
        }, giveUp: { [options] attempts, why in
            "did not come back within \(seconds(options.rejoinTimeout)) (--rejoin-timeout) after it was lost (\(cause)); \(attempts) attempt(s), the last: \(why)"
        })
        log.notice("reached the coordinator at \(coordinatorAddress) again after \(seconds(monotonic() - since)) (attempt \(attempt)); rejoining as rank \(options.rank)")
        return c
    }

    /// The coordinator's address tried again and again (waits of 0.25 s doubling up to `maxWait`)
    /// until `limit` seconds have passed since `since`: `retry` is told of each failed attempt
    /// (its number, why, the wait, the time left), and the error when the time is up says what
    /// `giveUp` says. A refusal ends it at once; anything else (a refused connection, an unknown
    /// host while a container starts, a broken handshake) is tried again. Returns the connection
    /// and the attempts it took.
    func dialRepeatedly(_ hello: HelloMessage, since: Double, limit: Double, maxWait: Double,
                        retry: (Int, String, Double, Double) -> Void, giveUp: (Int, String) -> String) throws -> (Connection, Int) {
        let name = "coordinator \(coordinatorAddress)"
        var wait = 0.25, attempt = 0
        while true {
            attempt += 1
            do {
                // One attempt: a connect (at most 1 s where nothing answers), then a handshake of
                // at most 10 s, cut to what is left of the limit (at least 1 s).
                let left = max(1, since + limit - monotonic())
                let c = try Handshake.dial(options.coordinatorHost, options.coordinatorPort, name: name, claim: .hello, hello,
                                           auth: auth, role: "coordinator", within: 0, ioTimeout: ControlTimeouts.io, handshakeTimeout: min(HandshakeLimits.dialerTimeout, left))
                return (c, attempt)
            } catch let refused as HandshakeRefused {
                throw refused
            } catch {
                let left = since + limit - monotonic()
                guard left > 0 else { throw NetError(name, giveUp(attempt, why(error))) }
                retry(attempt, why(error), min(wait, left), left)
                Thread.sleep(forTimeInterval: min(wait, left))
                wait = min(wait * 2, maxWait)
            }
        }
    }

    /// Build: the replica (resumed from the start's checkpoint if any) and a trainer fed by the
    /// queue of shards the coordinator sends.
    func build(_ start: StartMessage, _ notices: Notices) throws -> (GANTrainer, ShardQueue) {
        let c = start.config
        let models = GANModels(config: c)
        var startStep = 0
        var sampler = try EpochSampler(count: 1, batchSize: 1, seed: 0)
        if let r = start.resume {
            let ckpt = try Checkpoint.read(path: r)
            try ckpt.restore(into: models, path: r)
            startStep = ckpt.step
            sampler = ckpt.sampler
            log.info("resumed from \(r) at step \(startStep)")
        }
        let queue = ShardQueue(initial: sampler, imageSize: c.imageSize, timeout: start.timeout, silence: { notices.silence })
        let trainer = GANTrainer(models: models, source: queue, rank: start.rank, worldSize: start.worldSize)
        trainer.restore(step: startStep, sampler: sampler)
        return (trainer, queue)
    }

    /// Forms the ring (to the right neighbour and the far links) and joins the trainer to it.
    /// A stop or the coordinator's loss (`holder` closed) cancels the formation at once.
    func formRing(_ start: StartMessage, _ ringListener: Listener, _ trainer: GANTrainer, _ holder: RingHolder) throws -> Ring {
        let c = start.config, models = trainer.models
        let ring = try Ring.form(rank: start.rank, worldSize: start.worldSize, listener: ringListener,
                                 rightAddress: (start.rightHost, start.rightPort), farAddresses: start.farAddresses,
                                 hostLinks: start.hostLinks, auth: auth, codec: start.codec, level: start.level,
                                 timeout: start.timeout, log: { [log] in log.warning("ring listener: \($0)") },
                                 cancelled: { holder.isClosed })
        guard holder.set(ring) else { throw NetError("ring", "the formation was cancelled") }
        let statistics = ring.gathersInOneRound
            ? ", statistics over \(start.farAddresses.count) far link(s) in one round"
            : ring.gathersInLogRounds
            ? ", statistics over \(start.farAddresses.count) far link(s) in \(RingAlgorithms.rounds(start.worldSize)) rounds" : ""
        let hosts = ring.hostLayout.map { ", gradients by host (\($0))" } ?? ""
        log.info("ring of \(start.worldSize) formed (rank \(start.rank) -> \(start.rightHost):\(start.rightPort)), codec \(start.codec.rawValue)\(start.autoCodec == true ? " or raw (auto)" : "")\(statistics)\(hosts)")
        if start.autoCodec == true && start.worldSize > 1 && !start.codec.isLossy {
            let choice = try ring.chooseCodec()
            log.notice("\(choice)")
        }
        if start.worldSize > 1 {
            // Exact mode normalises each micro-batch by itself and merges the statistics at the step's
            // end (`GANTrainer.trainStepExact`); otherwise BatchNorm is SyncBatchNorm over the ring.
            if c.microBatches == nil {
                for m in models.generator.modules() + models.discriminator.modules() { (m as? BatchNorm)?.synchronizer = ring }
            }
        }
        trainer.reducer = start.worldSize > 1 ? ring : nil
        return ring
    }

    /// What the coordinator said outside the shards: stop (perhaps to re-form), or finished.
    final class Notices: @unchecked Sendable {
        private var stop: WorkerStop?
        private var finished = false
        private var ended = false
        private var lastHeard = monotonic()
        private let lock = NSLock()
        /// A frame came from the coordinator (a shard, a heartbeat, a notice).
        func heard() { lock.lock(); lastHeard = monotonic(); lock.unlock() }
        /// Seconds since the coordinator was last heard from.
        var silence: Double { lock.lock(); defer { lock.unlock() }; return monotonic() - lastHeard }
        /// The session is over, however it ended: the heartbeat ends.
        func end() { lock.lock(); ended = true; lock.unlock() }
        var stopped: WorkerStop? { lock.lock(); defer { lock.unlock() }; return stop }
        /// Finished or stopped: the heartbeat ends.
        var isOver: Bool { lock.lock(); defer { lock.unlock() }; return finished || stop != nil || ended }
        func setStop(_ s: WorkerStop) { lock.lock(); stop = s; lock.unlock() }
        /// A lost connection counts as a stop unless the run already ended.
        func setLost(_ s: WorkerStop) { lock.lock(); if stop == nil && !finished { stop = s }; lock.unlock() }
        func setFinished() { lock.lock(); finished = true; lock.unlock() }
        /// Both flags at once, as one observation.
        var state: (finished: Bool, stop: WorkerStop?) { lock.lock(); defer { lock.unlock() }; return (finished, stop) }
    }

    /// Heartbeat: a thread tells the coordinator this worker is alive until the session is over.
    func heartbeat(_ conn: Connection, _ start: StartMessage, _ notices: Notices) {
        let heartbeat = Thread {
            while true {
                if notices.isOver { return }
                do { try conn.send(.heartbeat, payload: UnsafeRawBufferPointer(start: nil, count: 0)) } catch { return }
                Thread.sleep(forTimeInterval: start.heartbeat)
            }
        }
        heartbeat.start()
    }

    /// Listen: a reader thread puts shards into the queue and records stop and finish notices.
    /// A stop also closes the ring: a step blocked on a frozen neighbour (SIGSTOP keeps its
    /// sockets open) fails at once instead of waiting out the ring's read timeout.
    func listen(_ conn: Connection, _ start: StartMessage, _ queue: ShardQueue, _ notices: Notices, _ ring: RingHolder) {
        let batchSize = start.config.batchSize
        let reader = Thread {
            while true {
                let f: Frame
                do { f = try conn.receive(maxPayload: ControlLimits.shard) } catch {
                    // The connection ended or failed: the coordinator died, or the network did.
                    // Stop training at once (queued shards dropped, the ring closed so a step
                    // in a collective fails now), so that nothing is trained or written after
                    // the coordinator's last word; the session ends and, with --rejoin-timeout,
                    // the worker waits for a restarted coordinator.
                    let reason = "lost the coordinator: \(error)"
                    notices.setLost(WorkerStop(reason: reason, lost: true, cause: why(error)))
                    queue.close(reason, discard: true)
                    ring.close()
                    return
                }
                notices.heard()
                do {
                    switch f.type {
                    case .heartbeat:
                        continue   // the coordinator is alive: its silence between shards is a slow step
                    case .batch:
                        let (h, px) = try BatchHeader.unpack(f.payload, peer: conn.peer, batchSize: batchSize)
                        queue.push(h, Array(px))
                    case .stop:
                        let s = try f.decode(StopMessage.self, from: conn.peer)
                        notices.setStop(WorkerStop(reason: s.reason, reform: s.reform, interrupted: s.interrupted == true))
                        queue.close(s.reason)
                        ring.close()
                        return
                    case .finished:
                        notices.setFinished()
                        return
                    default:
                        throw NetError(conn.peer, "unexpected \(f.type) frame from the coordinator")
                    }
                } catch {
                    // A message the worker refuses (a bad batch, an unexpected frame): not a
                    // coordinator worth waiting for.
                    let reason = "refused a message from the coordinator: \(error)"
                    notices.setLost(WorkerStop(reason: reason))
                    queue.close(reason)
                    return
                }
            }
        }
        reader.start()
    }

    /// Train: the training session (rank 0 writes the run folder), reporting every step to the
    /// coordinator. A failed step is reported, then the coordinator's decision (a stop) followed.
    func train(_ trainer: GANTrainer, _ ring: Ring, _ conn: Connection, _ start: StartMessage, _ notices: Notices) throws {
        let c = start.config
        let folder = RunFolder(path: start.runDir, keep: start.keep)
        let session = try TrainingSession(trainer: trainer, folder: folder, sampleEvery: start.sampleEvery,
                                          checkpointEvery: start.checkpointEvery, writes: start.rank == 0)
        session.logEvery = start.logEvery ?? 1   // at least 1: StartMessage.check
        // The coordinator's time limit or interrupt: it marks the last step's shards; every rank
        // ends after it.
        let queue = trainer.source as? ShardQueue
        session.shouldEnd = { queue?.lastStep.map { trainer.step >= $0 } ?? false }
        // The next step's real-image pass under this step's generator all-reduce, after every
        // step that another follows and after which no checkpoint is written. Every rank decides
        // alike: from the step number, the cadence, and the last step, which every rank knows
        // by then (it holds that step's shard).
        if let floats = options.bucketFloats { trainer.schedule.bucketFloats = floats }
        if options.overlapsRealPass && start.worldSize > 1 {
            trainer.schedule.overlapsNextRealPass = { s in
                s < c.steps && !(start.checkpointEvery > 0 && s % start.checkpointEvery == 0)
                    && (queue?.lastStep.map { s < $0 } ?? true)
            }
        }
        let firstStep = trainer.step
        defer {
            if start.worldSize > 1 {
                log.notice("\(ring.summary(steps: trainer.step - firstStep)); \(trainer.schedule.overlappedRealPasses) real-image pass(es) computed under the generator's all-reduce")
                if let line = ring.statisticsByPlace() { log.notice("ring, \(line)") }
            }
        }
        do {
            try session.run { m in
                let s = m.step
                ring.markStep()
                let checksum = start.checksumEvery > 0 && (s % start.checksumEvery == 0 || s == c.steps || s == queue?.lastStep) ? replicaChecksum(trainer.models) : nil
                let done = StepDoneMessage(shard: EpochSampler.shard(c.batchSize, rank: start.rank, worldSize: start.worldSize, microBatches: c.microBatches).count,
                                           metrics: m, checksum: checksum, wireBytes: ring.stats.wireBytes, rawBytes: ring.stats.rawBytes)
                try? conn.send(.stepDone, json: done)
                if start.rank == 0 && start.worldSize > 1 {
                    // Rank 0's share of the ring traffic so far (every rank moves the same amount).
                    session.logScalars([("dist/bytes_on_wire", Float(ring.stats.wireBytes)),
                                        ("dist/compression_ratio", Float(ring.stats.compressionRatio))], step: s)
                }
            }
        } catch {
            if let s = notices.stopped { throw s }
            // Tell the coordinator, then follow its decision (a stop comes back to every rank).
            log.error("step \(trainer.step + 1) failed: \(error)")
            try? conn.send(.failure, bytes: Array("rank \(start.rank) at step \(trainer.step + 1): \(error)".utf8))
            let deadline = Date().addingTimeInterval(start.timeout)
            while Date() < deadline {
                if let s = notices.stopped { throw s }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw error
        }
    }

    /// Finish: everything is written (rank 0's last checkpoint is on disk); say so and wait for
    /// the coordinator to confirm the end of the run.
    func finish(_ conn: Connection, _ start: StartMessage, _ trainer: GANTrainer, _ notices: Notices) throws {
        try conn.send(.finished, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        // The slowest rank, and rank 0's last checkpoint, may take longer than the timeout: the
        // wait lasts while the coordinator is heard from (its heartbeats).
        while notices.silence < start.timeout {
            let (f, s) = notices.state
            if f { log.info("run finished at step \(trainer.step)\(trainer.step < start.config.steps ? " (the coordinator ended the run early: a time limit or an interrupt)" : "")"); return }
            if let s { throw s }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw NetError(conn.peer, "the coordinator did not confirm the end of the run (silent for \(seconds(start.timeout)))")
    }
}

/// `12 s`, `1.5 s`, `0.25 s`: a duration for the log.
func seconds(_ s: Double) -> String {
    if s >= 10 { return "\(Int(s.rounded())) s" }
    var t = String(format: "%.2f", s)
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t + " s"
}

/// A network error without the peer it names (the message names it already).
func why(_ error: Error) -> String { (error as? NetError)?.reason ?? "\(error)" }
