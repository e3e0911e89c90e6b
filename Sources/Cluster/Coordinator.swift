import Collectives
import Datasets
import Foundation
import GAN
import Logging
import Telemetry
import Tensors

public struct CoordinatorOptions: Sendable {
    /// The defaults gan-coordinator's flags show and use, named once.
    public enum Defaults {
        public static let codec = GradientCodec.shuffleZstd
        public static let level: Int32 = 1
        public static let checksumEvery = 10
        public static let prefetch = 3
        public static let deadAfter: Double = 15
        public static let rendezvousTimeout: Double = 120
        /// Seconds between a silent worker's heartbeats (sent to the workers in the start message).
        public static let heartbeat: Double = 1
        /// Seconds any network wait of a run may last (sent to the workers in the start message).
        public static let ioTimeout: Double = 60
    }
    public var workers: Int
    public var minWorkers: Int?
    public var host = LauncherEnvironment.defaultHost
    public var port: UInt16 = LauncherEnvironment.defaultPort
    public var token: String
    public var config: GANConfig
    public var runDir: String
    public var sampleEvery = RunCadence.sampleEvery
    /// Rank 0's metrics lines and TensorBoard scalars every K steps (gradient norms only then).
    public var logEvery = RunCadence.logEvery
    public var checkpointEvery = RunCadence.checkpointEvery
    public var keep = RunCadence.keep
    public var resume: String?
    /// `--resume auto`: once every worker has joined (so no session of a coordinator that died
    /// is still writing), a checkpoint of the run newer than `resume` is resumed instead.
    public var resumeNewest = false
    public var codec = Defaults.codec
    /// `--codec auto`: each ring, when it forms, weighs `codec` (lossless) against raw on its
    /// links and uses the faster one.
    public var autoCodec = false
    /// Whether gradients are reduced host by host where several workers share a machine
    /// (`HostLayout.grouping` of the workers' `--node`s); false: always round the flat ring.
    public var hierarchy = true
    public var level = Defaults.level
    public var checksumEvery = Defaults.checksumEvery
    /// Steps of shards sent ahead of the slowest worker.
    public var prefetch = Defaults.prefetch
    /// Seconds a worker may be silent (no step, no heartbeat) before it counts as dead.
    public var deadAfter = Defaults.deadAfter
    public var heartbeat = Defaults.heartbeat
    /// Seconds to wait for workers to join.
    public var rendezvousTimeout = Defaults.rendezvousTimeout
    /// Seconds any network wait may last.
    public var ioTimeout = Defaults.ioTimeout
    /// Seconds a connecting peer has, in all, to complete the handshake (bytes do not extend it).
    public var handshakeTimeout = HandshakeLimits.listenerTimeout
    /// Handshakes in progress at once; a connection beyond that evicts the oldest pending one.
    public var maxPendingHandshakes = HandshakeLimits.maxPending
    /// End the run at this time even before `config.steps` (`--time-limit`): the next step whose
    /// shards go out is marked the last, every rank ends after it, and rank 0 writes the final
    /// grid and checkpoint. Steps already sent ahead (at most `prefetch`) are trained first.
    public var deadline: Date?
    public init(workers: Int, token: String, config: GANConfig, runDir: String) {
        self.workers = workers
        self.token = token
        self.config = config
        self.runDir = runDir
    }
}

/// What ended a run.
public struct CoordinatorFailure: Error, CustomStringConvertible {
    public let description: String
}

/// `shouldStop` ended the coordinator while it waited for workers, before any step was trained
/// in that formation.
public struct CoordinatorStopped: Error, CustomStringConvertible {
    public let description: String
}

/// The coordinator: rendezvous, ring assignment, per-step shards sent ahead, progress,
/// replica checksums, failure detection and re-formation.
public final class Coordinator {
    public let options: CoordinatorOptions
    var log: Logger
    let auth: Authenticator
    let listener: Listener
    public var port: UInt16 { listener.port }
    /// The step the run ended at when `deadline` ended it (nil: it ran to `config.steps`).
    public internal(set) var stoppedByDeadlineAt: Int?
    /// Asked while workers join and before each step's shards go out: true ends the run as
    /// `deadline` does (the next step sent is the last; rank 0 writes the final grid and
    /// checkpoint), or, before training has begun, at once with `CoordinatorStopped`
    /// (`gan-coordinator` uses it for SIGINT and SIGTERM).
    public var shouldStop: (() -> Bool)?
    /// The step the run ended at when `shouldStop` ended it.
    public internal(set) var stoppedByRequestAt: Int?
    /// Called from the coordinator's own loop at every turn (at least once a second while it
    /// waits for workers, trains or re-forms), so that a hung loop stops calling it:
    /// `gan-coordinator --heartbeat-file` beats there (`HeartbeatFile`).
    public var onTick: (() -> Void)?
    /// Steps every rank completed in this coordinator's life (0: the run had none left).
    public internal(set) var stepsCompleted = 0

    final class Member: @unchecked Sendable {
        let requestedRank: Int
        let pid: Int32
        var rank: Int
        let conn: Connection
        let ringHost: String
        let ringPort: UInt16
        /// The machine it runs on (its `--node`, else its ring address's host).
        var node: String
        var lastSeen = monotonic()
        /// It takes the coordinator's heartbeats (its hello said so).
        let takesHeartbeats: Bool
        init(requestedRank: Int, pid: Int32, conn: Connection, ringHost: String, ringPort: UInt16, node: String? = nil,
             takesHeartbeats: Bool = false) {
            self.node = node ?? ringHost
            self.takesHeartbeats = takesHeartbeats
            self.requestedRank = requestedRank
            self.pid = pid
            rank = requestedRank
            self.conn = conn
            self.ringHost = ringHost
            self.ringPort = ringPort
        }
    }

    enum Event { case frame(Int, Frame), lost(Int, String) }
    final class Events: @unchecked Sendable {
        let cond = NSCondition()
        var items: [Event] = []
        func push(_ e: Event) { cond.lock(); items.append(e); cond.signal(); cond.unlock() }
        func pop(timeout: Double) -> Event? {
            cond.lock(); defer { cond.unlock() }
            if items.isEmpty { _ = cond.wait(until: Date().addingTimeInterval(timeout)) }
            return items.isEmpty ? nil : items.removeFirst()
        }
    }

    /// Handshakes with whoever connects, concurrently, for the coordinator's whole life (so
    /// strangers that connect during training are served and dropped then, not at re-formation).
    let admissions: Admissions<HelloMessage>

    public init(options: CoordinatorOptions, logger: Logger) throws {
        self.options = options
        log = logger
        auth = try Authenticator(token: options.token, source: "the coordinator's token")
        listener = try Listener(host: options.host, port: options.port)
        ignoreSigpipe()
        let l = logger
        admissions = Admissions(listener: listener, claim: .hello, as: HelloMessage.self, auth: auth, role: "coordinator",
                                wrongToken: "authentication failed: wrong token", maxPending: options.maxPendingHandshakes,
                                handshakeTimeout: options.handshakeTimeout, ioTimeout: ControlTimeouts.io) { l.warning("\($0)") }
    }

    deinit { admissions.stop() }

    /// A worker process this coordinator declared dead (silent for `--dead-after`, its connection
    /// lost, or its step failed), by identity: the rank it asked for, its pid and its ring
    /// address (a restarted container may have the same pid, never the same ring listener).
    struct Identity: Hashable { let rank: Int; let pid: Int32; let ringHost: String; let ringPort: UInt16 }
    /// The processes declared dead in this coordinator's life, with the step and why: none of
    /// them is readmitted, during a re-formation or during training (a frozen worker resumed
    /// with SIGCONT, a partitioned one whose network came back). A restarted worker is a new
    /// process and may take a free rank when the ring next re-forms.
    var declaredDead: [Identity: (step: Int, why: String)] = [:]

    /// Why `hello` is refused at once because its process was declared dead, or nil.
    func deadRefusal(_ hello: HelloMessage) -> String? {
        guard let d = declaredDead[Identity(rank: hello.rank, pid: hello.pid, ringHost: hello.ringHost, ringPort: hello.ringPort)] else { return nil }
        return "rank \(hello.rank) (pid \(hello.pid)) was declared dead at step \(d.step) (\(d.why)); this run does not readmit that process: "
            + "the ring re-formed without it (a restarted worker, a new process, may take a free rank when the ring next re-forms)"
    }

    /// An authenticated refusal of an admitted peer, naming why.
    func refuse(_ c: Connection, _ why: String) {
        log.warning("refused \(c.peer): \(why)")
        try? c.send(.reject, bytes: Array(why.utf8))
        c.close()
    }

    /// During training: a worker declared dead that connects again is refused at once, naming
    /// why (it used to wait in the admission queue until the run ended). Other admitted peers
    /// (a restarted worker) stay queued for the next re-formation.
    func refuseDeclaredDead() {
        guard !declaredDead.isEmpty else { return }
        for a in admissions.take(where: { deadRefusal($0) != nil }) { refuse(a.conn, deadRefusal(a.claim) ?? "declared dead") }
    }

    /// Admits workers until `count` have joined, or the timeout passes. The handshakes run
    /// concurrently (`Admissions`); this decides about the claims of the peers that proved the
    /// token, answering a refusal with an authenticated `reject`. A re-formation admits by
    /// identity: `required` maps the survivors' ranks to their process ids, and a rank is given
    /// only to its survivor (whoever connects first); a process declared dead (`declaredDead`) is
    /// not readmitted (a restarted one may take the rank). It waits for every survivor, and at
    /// the timeout goes on without the missing ones if at least `minimum` joined.
    func rendezvous(count: Int, ranks allowed: Set<Int>?, required: [Int: Int32] = [:], minimum: Int? = nil) throws -> [Member] {
        var members: [Int: Member] = [:]
        let deadline = monotonic() + options.rendezvousTimeout
        log.info("waiting for \(count) worker(s) on \(options.host):\(listener.port)\(required.isEmpty ? "" : " (the surviving ranks \(required.keys.sorted()))")")
        func done() -> Bool { members.count >= count && Set(required.keys).isSubset(of: Set(members.keys)) }
        while !done() {
            onTick?()
            if shouldStop?() == true {
                throw CoordinatorStopped(description: "asked to stop while waiting for workers (\(members.count) of \(count) joined)")
            }
            let left = deadline - monotonic()
            guard left > 0 else {
                if let m = minimum, members.count >= m {
                    log.warning("surviving rank(s) \(Set(required.keys).subtracting(members.keys).sorted()) did not rejoin within \(Int(options.rendezvousTimeout)) s; going on with \(members.count)")
                    break
                }
                throw CoordinatorFailure(description: "only \(members.count) of \(count) workers joined within \(Int(options.rendezvousTimeout)) s (ranks \(members.keys.sorted()))")
            }
            guard let a = admissions.next(timeout: min(left, 1)) else { continue }
            let (hello, c) = (a.claim, a.conn)
            let valid = allowed.map { $0.contains(hello.rank) } ?? (hello.rank >= 0 && hello.rank < options.workers)
            var why: String?
            if !valid { why = "rank \(hello.rank) is out of range for \(options.workers) workers" }
            else if members[hello.rank] != nil { why = "rank \(hello.rank) has already joined" }
            else if let p = required[hello.rank], p != hello.pid { why = "rank \(hello.rank) belongs to its surviving worker (pid \(p)), not pid \(hello.pid)" }
            else if let dead = deadRefusal(hello) { why = dead }
            if let why {
                refuse(c, why)
                continue
            }
            members[hello.rank] = Member(requestedRank: hello.rank, pid: hello.pid, conn: c, ringHost: hello.ringHost, ringPort: hello.ringPort,
                                         node: hello.node, takesHeartbeats: hello.heartbeats == true)
            log.info("rank \(hello.rank) joined from \(c.peer) (pid \(hello.pid)); \(members.count) of \(count)")
        }
        // Dense ranks in order of the requested ones.
        let ordered = members.keys.sorted().map { members[$0]! }
        for (i, m) in ordered.enumerated() { m.rank = i }
        return ordered
    }

    /// Runs the whole job on `dataset` (default: the config's training data); returns normally
    /// when the run completes.
    public func run(dataset given: ImageDataset? = nil, progress: ((ClusterStep) -> Void)? = nil) throws {
        let c = options.config
        let dataset = try given ?? loadTrainingData(c)
        // Before any worker is admitted: a batch or channel count the data cannot give is the
        // flags' fault, and no worker should start on it.
        try c.checkFits(dataset)
        log.info("\(dataset.count) training images from \(dataset.source); \(c.steps) steps of a global batch of \(c.batchSize)")
        var resume = options.resume
        var members = try rendezvous(count: options.workers, ranks: nil)
        if options.resumeNewest { resume = newerCheckpoint(than: resume) }
        do {
            try formAndTrain(members: &members, resume: &resume, dataset: dataset, progress: progress)
        } catch {
            // A run that formed a ring ends in the event log too; one stopped before it did
            // has no events (nothing of it ran).
            if formedRings > 0 { record(RunEvent(.ended, step: stepsCompletedThrough, ending: .failed, reason: "\(error)", checkpoint: folder.checkpoints.latest())) }
            throw error
        }
        let ending: RunEvent.Ending = stoppedByRequestAt != nil ? .stopRequest : stoppedByDeadlineAt != nil ? .timeLimit : .completed
        record(RunEvent(.ended, step: stepsCompletedThrough, ending: ending, checkpoint: folder.checkpoints.latest()))
    }

    /// The run folder, as the coordinator sees it (it reads checkpoints to resume from there and
    /// writes the run's `events.jsonl`).
    var folder: RunFolder { RunFolder(path: options.runDir, keep: options.keep) }
    /// Rings formed so far (`formed` events recorded).
    var formedRings = 0
    /// The last step every rank of the current formation finished.
    var stepsCompletedThrough = 0

    /// Appends a run event; a failed write is a warning, never a reason to stop the run.
    func record(_ e: RunEvent) {
        if let why = folder.record(e) { log.warning("cannot record the run's \(e.event.rawValue) event: \(why)") }
    }

    /// Trains formation after formation: a lost worker re-forms the ring with the survivors
    /// from the last checkpoint (`--min-workers`), until the run completes or cannot go on.
    func formAndTrain(members: inout [Member], resume: inout String?, dataset: ImageDataset,
                      progress: ((ClusterStep) -> Void)?) throws {
        while true {
            do {
                try train(members: members, dataset: dataset, resume: resume, progress: progress)
                return
            } catch let f as MemberFailure {
                record(RunEvent(.lost, step: f.step, ranks: f.dead.sorted(), reason: f.reason))
                let survivors = members.filter { !f.dead.contains($0.rank) }
                for m in members { m.conn.close() }
                guard let minW = options.minWorkers, survivors.count >= minW else {
                    throw CoordinatorFailure(description: "\(f.reason); stopping the run (no --min-workers, or fewer than it survive)"
                        + lastCheckpointNote())
                }
                log.error("\(f.reason); re-forming the ring with the \(survivors.count) survivor(s) (at least \(minW)) from the last checkpoint")
                for m in members where f.dead.contains(m.rank) {
                    declaredDead[Identity(rank: m.requestedRank, pid: m.pid, ringHost: m.ringHost, ringPort: m.ringPort)] = (f.step, f.cause)
                }
                resume = newestVerifiedCheckpoint()
                onDead?(members.filter { f.dead.contains($0.rank) }.map { $0.pid })
                // Survivors rejoin with their ranks; a replacement may take a dead rank.
                members = try rendezvous(count: max(minW, survivors.count), ranks: Set(0..<options.workers),
                                         required: Dictionary(uniqueKeysWithValues: survivors.map { ($0.requestedRank, $0.pid) }),
                                         minimum: minW)
            }
        }
    }

    /// Called with the process ids of the workers declared dead (before a re-formation), so that
    /// whoever started them (--spawn) can kill and reap them.
    public var onDead: (([Int32]) -> Void)?

    /// The newest checkpoint of the run that reads back whole (checksum, header, entries);
    /// newer ones that do not are named in the log and skipped.
    func newestVerifiedCheckpoint() -> String? {
        if let (p, _) = newestVerified() { return p }
        log.warning("no checkpoint of the run verifies: the ring re-forms from step 0")
        return nil
    }

    func newestVerified() -> (path: String, checkpoint: Checkpoint)? {
        CheckpointStore(directory: options.runDir + "/checkpoints").newestVerified { [log] p, error in
            log.error("skipping checkpoint \(p): \(error)")
        }
    }

    /// `--resume auto`, once every worker has joined: rank 0 of a coordinator that died may have
    /// finished a checkpoint after this one started looking (workers stop training when they
    /// lose the coordinator, and rejoin only once their session has ended). The newest one that
    /// verifies and belongs to this run is resumed; otherwise `current`.
    func newerCheckpoint(than current: String?) -> String? {
        func same(_ a: String, _ b: String?) -> Bool {
            b.map { URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: $0).standardizedFileURL.path } ?? false
        }
        guard let (p, ckpt) = newestVerified(), !same(p, current) else { return current }
        guard ckpt.config.sameRun(as: options.config) else {
            log.warning("\(p) appeared while the workers joined but belongs to a run with another config; not resuming from it")
            return current
        }
        log.notice("\(p) (step \(ckpt.step)) was written while the workers rejoined; resuming from it")
        return p
    }

    func lastCheckpointNote() -> String {
        if let p = CheckpointStore(directory: options.runDir + "/checkpoints").latest() { return "; the last checkpoint is \(p)" }
        return "; no checkpoint was written yet"
    }

    /// Ranks `dead` failed at `step`: `reason` for the log, `cause` (shorter, without the ranks)
    /// for the refusal of a dead process that connects again.
    struct MemberFailure: Error { let reason: String; let dead: Set<Int>; var step: Int; var cause: String }

    /// One formation of the ring, from the start messages to the end of the run (or a failure),
    /// in the stages `train` runs top to bottom: join, then a loop of send-ahead, liveness and
    /// step aggregation, until every rank has finished.
    func train(members: [Member], dataset: ImageDataset, resume: String?, progress: ((ClusterStep) -> Void)?) throws {
        let run = try Formation(coordinator: self, members: members, dataset: dataset, resume: resume, progress: progress)
        try run.join()
        let events = run.listen()
        while true {
            onTick?()
            refuseDeclaredDead()
            // Asked to stop while the ring forms: no step to finish, so nothing waits for the
            // formation (which may wait out a missing peer for the I/O timeout).
            if run.forming, shouldStop?() == true { try run.stopForming(events) }
            try run.sendAhead()
            run.beat()
            guard let e = events.pop(timeout: 0.2) else {
                try run.checkLiveness()
                continue
            }
            switch e {
            case .lost(let i, let why):
                if run.allFinished { return }
                try run.lost(i, why)
            case .frame(let i, let f):
                if try run.receive(f, from: members[i], events: events) == .runComplete { return }
            }
        }
    }

    /// The state of one formation: the members, the data they are sent, and how far the steps
    /// have got (sent ahead, completed by every rank, finished).
    final class Formation {
        let coordinator: Coordinator
        let members: [Member]
        let dataset: ImageDataset
        let resume: String?
        let progress: ((ClusterStep) -> Void)?
        let source: LocalBatches
        /// The step the formation starts at (0, or a resumed checkpoint's).
        let firstStep: Int
        /// Steps whose shards are all sent.
        var sent: Int
        /// Steps every rank has reported done.
        var completed: Int
        /// Reports of steps not yet reported by every rank.
        var done = [Int: [StepDoneMessage]]()
        var finished = Set<Int>()
        /// Ranks that said their ring formed (a heartbeat saying `WorkerProcess.ringFormed`).
        var formed = Set<Int>()
        /// The ring is still forming: not every rank has said it formed, and none has reported
        /// a step of this formation (a worker of an older version does not say it).
        var forming: Bool { formed.count < members.count && done.isEmpty && completed == firstStep && finished.isEmpty }
        /// The last step, once the deadline has passed (or `shouldStop` said so).
        var endAt: Int?
        /// `endAt` was set by `shouldStop`, not by the deadline.
        var endedByRequest = false
        var t0 = monotonic()
        var options: CoordinatorOptions { coordinator.options }
        var config: GANConfig { coordinator.options.config }
        var log: Logger { coordinator.log }
        var allFinished: Bool { finished.count == members.count }

        init(coordinator: Coordinator, members: [Member], dataset: ImageDataset, resume: String?,
             progress: ((ClusterStep) -> Void)?) throws {
            self.coordinator = coordinator
            self.members = members
            self.dataset = dataset
            self.resume = resume
            self.progress = progress
            source = try LocalBatches(dataset: dataset, config: coordinator.options.config)
            var step = 0
            if let r = resume {
                let ck = try Checkpoint.read(path: r)
                source.restore(ck.sampler)
                step = ck.step
            }
            firstStep = step
            sent = step
            completed = step
        }

        /// Join: every member gets its start message (config, rank, right neighbour, resume).
        func join() throws {
            let n = members.count
            let (grouped, why) = HostLayout.grouping(members.map { $0.node })
            let layout = options.hierarchy ? grouped : nil
            if n > 1 {
                log.info(layout.map { "gradients reduced by host: \($0) (\(why))" }
                         ?? "gradients round the flat ring: \(options.hierarchy ? why : "--hierarchy off")")
            }
            for m in members {
                let right = members[(m.rank + 1) % n]
                var s = StartMessage(config: config, rank: m.rank, worldSize: n, rightHost: right.ringHost, rightPort: right.ringPort,
                                     runDir: options.runDir, sampleEvery: options.sampleEvery, checkpointEvery: options.checkpointEvery,
                                     keep: options.keep, resume: resume, codec: options.codec, level: options.level,
                                     checksumEvery: options.checksumEvery, timeout: options.ioTimeout, heartbeat: options.heartbeat,
                                     logEvery: options.logEvery)
                let far = Ring.farDistances(n).map { members[(m.rank + $0) % n] }
                s.autoCodec = options.autoCodec ? true : nil
                s.farHosts = far.map(\.ringHost)
                s.farPorts = far.map(\.ringPort)
                if let layout {
                    let inter = members[layout.interTo(m.rank)], local = (1..<layout.perHost).map { members[layout.localTo(m.rank, $0)] }
                    (s.hosts, s.perHost) = (layout.hosts, layout.perHost)
                    (s.interHost, s.interPort) = (inter.ringHost, inter.ringPort)
                    (s.localHosts, s.localPorts) = (local.map(\.ringHost), local.map(\.ringPort))
                }
                try m.conn.send(.start, json: s)
                m.lastSeen = monotonic()
            }
            log.info("started \(n) worker(s) at step \(firstStep)\(resume.map { " from \($0)" } ?? "")")
            coordinator.formedRings += 1
            coordinator.stepsCompletedThrough = firstStep
            coordinator.record(RunEvent(.formed, step: firstStep, from: resume, workers: n))
        }

        /// A reader thread per member turns its frames (and its loss) into events.
        func listen() -> Events {
            let events = Events()
            for (i, m) in members.enumerated() {
                m.conn.timeout = ControlTimeouts.waiting   // liveness is judged by heartbeats, not by the read timeout
                Thread {
                    while true {
                        do { events.push(.frame(i, try m.conn.receive(maxPayload: ControlLimits.message))) } catch {
                            events.push(.lost(i, "\(error)")); return
                        }
                    }
                }.start()
            }
            t0 = monotonic()
            return events
        }

        func stopAll(_ reason: String, reform: Bool, interrupted: Bool? = nil) {
            for m in members { try? m.conn.send(.stop, json: StopMessage(reason: reason, reform: reform, interrupted: interrupted)) }
        }

        /// Asked to stop (`shouldStop`) while the ring forms: every worker is told to end (it
        /// cancels its formation and exits 0), nothing was trained in this formation, nothing is
        /// written; `CoordinatorStopped` says so.
        func stopForming(_ events: Events) throws -> Never {
            let n = members.count
            log.notice("asked to stop while the ring formed (\(formed.count) of \(n) rank(s) had formed it): telling the workers to end")
            stopAll("the coordinator was asked to stop while the ring formed", reform: false, interrupted: true)
            // A moment for them to read it and hang up (their heartbeats unread here would
            // otherwise turn this process's exit into a reset that may overtake the stop).
            var gone = Set<Int>()
            let until = monotonic() + 3
            while gone.count < n && monotonic() < until {
                if case .lost(let i, _)? = events.pop(timeout: 0.1) { gone.insert(i) }
            }
            throw CoordinatorStopped(description: "asked to stop while the ring of \(n) worker(s) formed (\(formed.count) of \(n) had formed it); "
                + "no step of this formation was trained\(firstStep > 0 ? " (it was to resume at step \(firstStep))" : "")")
        }

        /// Send-ahead: every rank's shards of the steps up to `prefetch` beyond the last completed one.
        func sendAhead() throws {
            let c = config, n = members.count
            if endAt == nil, sent < c.steps {
                if let d = options.deadline, Date() >= d {
                    endAt = sent + 1
                    log.info("time limit reached: step \(sent + 1) is the last (steps up to \(sent) were sent ahead)")
                } else if coordinator.shouldStop?() == true {
                    endAt = sent + 1
                    endedByRequest = true
                    log.notice("asked to stop: step \(sent + 1) is the last (steps up to \(sent) were sent ahead); rank 0 then writes a checkpoint and a sample grid")
                }
            }
            while sent < (endAt ?? c.steps) && sent < completed + options.prefetch {
                for it in 0..<c.nCritic {
                    let global = source.nextGlobal()
                    let sampler = it == c.nCritic - 1 ? source.samplerState : nil
                    for m in members {
                        let mine = EpochSampler.shard(global.count, rank: m.rank, worldSize: n, microBatches: c.microBatches)
                        var px = [UInt8]()
                        px.reserveCapacity(mine.count * dataset.height * dataset.width)
                        let plane = dataset.height * dataset.width
                        for j in mine { px += dataset.pixels[(global[j] * plane)..<((global[j] + 1) * plane)] }
                        let h = BatchHeader(step: sent + 1, iteration: it, positions: Array(mine), height: dataset.height,
                                            width: dataset.width, sampler: sampler, last: endAt == sent + 1 ? true : nil)
                        do { try m.conn.send(Frame(.batch, tag: UInt64(sent + 1), payload: try packPayload(h, px))) } catch {
                            stopAll("rank \(m.rank) is unreachable", reform: options.minWorkers != nil)
                            throw MemberFailure(reason: "rank \(m.rank) is unreachable (\(error))", dead: [m.rank], step: completed + 1,
                                                cause: "unreachable: \(error)")
                        }
                    }
                }
                sent += 1
            }
        }

        /// When the workers were last sent a heartbeat.
        var beaten = 0.0

        /// The coordinator's own heartbeat, every `heartbeat` seconds to each worker that takes
        /// it: shards come only `--prefetch` steps ahead and nothing else between them, so a
        /// worker would otherwise hear nothing for `prefetch` steps at the run's end (and while
        /// the slowest rank or rank 0's last checkpoint is awaited) and take a slow run's silence
        /// for a lost coordinator. A failed send is left to the member's reader to report.
        func beat() {
            let now = monotonic()
            // At least four beats within the workers' read timeout (`--io-timeout`).
            guard now - beaten >= min(options.heartbeat, options.ioTimeout / 4) else { return }
            beaten = now
            for m in members where m.takesHeartbeats {
                try? m.conn.send(.heartbeat, payload: UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }

        /// Liveness: a rank that has not finished and sent nothing (no step, no heartbeat) for
        /// `deadAfter` seconds counts as dead.
        func checkLiveness() throws {
            let now = monotonic()
            let silent = members.filter { now - $0.lastSeen > options.deadAfter && !finished.contains($0.rank) }
            guard !silent.isEmpty else { return }
            let ranks = silent.map { $0.rank }
            stopAll("rank(s) \(ranks) stopped responding", reform: options.minWorkers != nil)
            throw MemberFailure(reason: "rank(s) \(ranks) sent nothing for \(Int(options.deadAfter)) s (hung or dead) at step \(completed + 1)",
                                dead: Set(ranks), step: completed + 1, cause: "silent for \(seconds(options.deadAfter)), --dead-after")
        }

        /// A member's connection ended before the run did.
        func lost(_ i: Int, _ why: String) throws {
            let r = members[i].rank
            stopAll("rank \(r) was lost", reform: options.minWorkers != nil)
            throw MemberFailure(reason: "lost rank \(r) at step \(completed + 1): \(why)", dead: [r], step: completed + 1, cause: "its connection was lost: \(why)")
        }

        enum Outcome { case running, runComplete }

        /// One frame from a member: a heartbeat, a failure, a step report, or its finish.
        func receive(_ f: Frame, from m: Member, events: Events) throws -> Outcome {
            m.lastSeen = monotonic()
            switch f.type {
            case .heartbeat:
                if !f.payload.isEmpty, String(decoding: f.payload, as: UTF8.self) == WorkerProcess.ringFormed { formed.insert(m.rank) }
                return .running
            case .failure: try failure(f, from: m, events: events)
            case .stepDone:
                let d = try f.decode(StepDoneMessage.self, from: m.conn.peer)
                done[d.step, default: []].append(d)
                try aggregateSteps()
                return .running
            case .finished: return finish(m)
            default:
                stopAll("protocol error", reform: false)
                throw CoordinatorFailure(description: "rank \(m.rank) sent an unexpected \(f.type) frame")
            }
        }

        /// A worker reported a failed step. The reporting rank may be healthy and its ring
        /// neighbour dead: wait a moment for the dead one's connection to drop, and decide who
        /// survives before the stop goes out (after it, survivors close their connections to rejoin).
        func failure(_ f: Frame, from m: Member, events: Events) throws -> Never {
            let why = String(decoding: f.payload, as: UTF8.self)
            var dead: Set<Int> = []
            let until = monotonic() + 2
            while monotonic() < until {
                if case .lost(let j, _)? = events.pop(timeout: 0.1) { dead.insert(members[j].rank) }
            }
            stopAll("a worker failed", reform: options.minWorkers != nil)
            throw MemberFailure(reason: "worker failure: \(why)", dead: dead.isEmpty ? [m.rank] : dead, step: completed + 1,
                                cause: dead.isEmpty ? "its step failed: \(why)" : "its connection was lost")
        }

        /// Step aggregation: each step every rank has reported is checked (replica checksums
        /// agree) and shown (means weighted by shard size, throughput, traffic), in order.
        func aggregateSteps() throws {
            let c = config, n = members.count
            while let all = done[completed + 1], all.count == n {
                completed += 1
                coordinator.stepsCompleted += 1
                coordinator.stepsCompletedThrough = completed
                done[completed] = nil
                let sums = all.filter { $0.checksum != nil }
                if sums.count == n, Set(sums.map { $0.checksum! }).count > 1 {
                    stopAll("replicas diverged", reform: false)
                    throw CoordinatorFailure(description: "replicas diverged at step \(completed): parameter checksums "
                        + all.map { String(format: "%08x", $0.checksum ?? 0) }.joined(separator: ", ") + coordinator.lastCheckpointNote())
                }
                let ips = Double(c.batchSize * (completed - firstStep)) / max(monotonic() - t0, 1e-9)
                progress?(ClusterStep(metrics: StepMetrics.weightedMean(all.map { ($0.metrics, $0.shard) }), totalSteps: c.steps,
                                      worldSize: n, imagesPerSecond: ips, wireBytes: all.reduce(0) { $0 + $1.wireBytes },
                                      rawBytes: all.reduce(0) { $0 + $1.rawBytes }))
            }
        }

        /// Finish: a rank has written everything; when all have, they are told the run is over.
        func finish(_ m: Member) -> Outcome {
            finished.insert(m.rank)
            guard allFinished else { return .running }
            for mm in members { try? mm.conn.send(.finished, payload: UnsafeRawBufferPointer(start: nil, count: 0)) }
            if let e = endAt {
                if endedByRequest { coordinator.stoppedByRequestAt = e } else { coordinator.stoppedByDeadlineAt = e }
            }
            log.info("run complete: \(completed) steps\(endAt != nil ? " (\(endedByRequest ? "asked to stop" : "time limit"); \(config.steps) were planned)" : "")")
            return .runComplete
        }
    }
}
