import ArgumentParser
import Collectives
import Cluster
import Datasets
import Foundation
import GAN
import Logging
import Telemetry
import Tensors
import TrainingCLI

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan-coordinator",
        abstract: "Coordinate data-parallel GAN training: N gan-worker processes joined in a TCP ring.",
        discussion: """
        Waits for --workers workers (each authenticates with the shared token), sends each the run \
        config and its ring neighbours, then streams every worker its shard of each global batch a \
        few steps ahead. Rank 0 writes sample grids and checkpoints into runs/<name>/. A global batch \
        that does not divide by the number of workers is spread evenly: the first (batch % workers) \
        ranks take one sample more, and the losses are weighted so the result equals one process \
        with the whole batch. A worker that dies or hangs is detected within --dead-after seconds; \
        with --min-workers the survivors re-form the ring and resume from the last checkpoint, \
        otherwise the run stops with a non-zero exit and says where the last checkpoint is.

        If the coordinator itself dies, the workers keep trying to reach its address for their \
        --rejoin-timeout; a coordinator started again with --resume auto (same --runs-dir, --name, \
        port and training flags) resumes the run from its newest checkpoint that reads back whole, \
        and they rejoin it and train on. cluster/local.sh, docker/docker-compose.yml and \
        cluster/k8s restart it that way. A coordinator that hangs instead of dying is found by its \
        --heartbeat-file, which its own loop touches about every second: those launchers kill a \
        coordinator whose file has not been touched for their limit (30 s in local.sh, 60 s in \
        the compose healthcheck and the Kubernetes livenessProbe), and restart it as above.

        SIGINT (Ctrl-C) or SIGTERM ends the run as --time-limit does (the steps already sent are \
        trained, rank 0 writes the final checkpoint and grid), prints the command that resumes it \
        (--resume auto) and exits 130 / 143; a second one stops at once. One that comes while the \
        workers join or while their ring forms (no step to finish) ends the run at once: the \
        workers are told to end, nothing is written. Workers started with \
        --spawn are in process groups of their own: a terminal's Ctrl-C reaches only the coordinator.

        Exit status: 0 the run completed; 1 the run failed after it started (a restart with \
        --resume auto may continue it; a spawned worker that crashed is named with the lines of its \
        log that say why); 2 it could not start (a --resume it cannot go on with, the token, the run \
        folder or its checkpoints, the data, the port): a restart would fail the same way; 64 a flag is malformed, out of its \
        range, or does not fit the others or the data (a --batch larger than the data set, an --nc \
        the images do not have, a --name whose folder already holds a run), said before anything \
        listens or a worker starts; 130 / 143 interrupted \
        by SIGINT / SIGTERM (the final checkpoint written, the command that resumes printed).
        """,
        version: BuildInfo.versionText("gan-coordinator"))

    @Option(parsing: .unconditional, help: "Number of workers.") var workers: Int
    @Option(parsing: .unconditional, help: "After a failure, re-form the ring if at least this many workers survive (default: stop).") var minWorkers: Int?
    @Option(help: "Address to listen on (default: $MASTER_ADDR, else \(LauncherEnvironment.defaultHost)).") var host: String?
    @Option(parsing: .unconditional, help: "Port to listen on (default: $MASTER_PORT, else 29500).") var port: UInt16?
    @Option(help: "File holding the shared token (default: $RINGGAN_TOKEN; with --spawn a random one).") var tokenFile: String?
    @OptionGroup var training: TrainingFlags
    @OptionGroup var output: RunFlags
    @Option(help: "Gradient codec: \(GradientCodec.allCases.map { $0.rawValue }.joined(separator: ", ")), or auto (each ring, when it forms, times an all-reduce raw and with \(CoordinatorOptions.Defaults.codec.rawValue) over its links and uses the faster; the workers' logs say which; never a lossy codec).") var codec: String = CoordinatorOptions.Defaults.codec.rawValue
    @Option(help: "Gradient all-reduce by machine: auto (where every machine has the same number, two or more, of workers with consecutive ranks, sum among each machine's workers first, then one ring between machines: the flat ring's sums bit for bit, in fewer hops between machines; machines by gan-worker --node, else by address) or off (always the flat ring). The log says which.")
    var hierarchy: String = "auto"
    @Option(parsing: .unconditional, help: "zstd level.") var zstdLevel: Int32 = CoordinatorOptions.Defaults.level
    @Option(parsing: .unconditional, help: "Compare parameter checksums across ranks every K steps (0: never).") var checksumEvery: Int = CoordinatorOptions.Defaults.checksumEvery
    @Option(parsing: .unconditional, help: "Steps of shards sent ahead of the slowest worker.") var prefetch: Int = CoordinatorOptions.Defaults.prefetch
    @Option(parsing: .unconditional, help: "Seconds a worker may be silent before it counts as dead.") var deadAfter: Double = CoordinatorOptions.Defaults.deadAfter
    @Option(parsing: .unconditional, help: "Seconds any network wait of the run may last: a worker's read of a ring neighbour, and of this coordinator, which sends each worker a heartbeat every second (a worker that hears nothing from it for this long counts it lost).") var ioTimeout: Double = CoordinatorOptions.Defaults.ioTimeout
    @Option(parsing: .unconditional, help: "Seconds to wait for the workers to join.") var rendezvousTimeout: Double = CoordinatorOptions.Defaults.rendezvousTimeout
    @Flag(help: "Start the workers as local child processes (logs in runs/<name>/logs/rank-N.log); they exit when this coordinator does (--rejoin-timeout 0).") var spawn = false
    @Option(parsing: .unconditional, help: "Engine threads per spawned worker.") var workerThreads: Int = 1
    @Flag(help: "Print one JSON line per step instead of the progress display.") var json = false
    @Option(help: "Touch this file (its modification time) about every second from the coordinator's own loop, so that a launcher can kill and restart a coordinator that hangs: cluster/local.sh (--stale-after), the compose healthcheck and the Kubernetes livenessProbe do. Made at the start, with the coordinator's process id on its first line.")
    var heartbeatFile: String?
    @Option(help: "Stop after this much time, counted from the command's start (300, 45s, 5m, 1h30m), the final checkpoint and grid written then, even before --steps (default: the preset's, if any).")
    var timeLimit: String?
    @OptionGroup var logging: LogOptions

    /// The most workers a run takes, and the most --spawn starts on this machine.
    static let maxWorkers = 1024, maxSpawned = 64

    func validate() throws {
        try FlagCheck.range("--workers", workers, 1...Self.maxWorkers)
        if spawn { try FlagCheck.range("--workers", workers, 1...Self.maxSpawned, "with --spawn, local worker processes") }
        try FlagCheck.range("--min-workers", minWorkers, 1...workers, "at most --workers")
        try FlagCheck.oneOf("--codec", codec, GradientCodec.allCases.map { $0.rawValue } + ["auto"])
        try FlagCheck.oneOf("--hierarchy", hierarchy, ["auto", "off"])
        try FlagCheck.range("--zstd-level", zstdLevel, -7...22, "negative: faster")
        try FlagCheck.atLeast("--checksum-every", checksumEvery, 0, "0: never")
        try FlagCheck.range("--prefetch", prefetch, 1...64)
        try FlagCheck.range("--dead-after", deadAfter, 0.1...FlagCheck.maxSeconds, "seconds")
        try FlagCheck.range("--io-timeout", ioTimeout, 1...FlagCheck.maxSeconds, "seconds")
        try FlagCheck.range("--rendezvous-timeout", rendezvousTimeout, 0.1...FlagCheck.maxSeconds, "seconds")
        try FlagCheck.range("--worker-threads", workerThreads, FlagCheck.threads)
        if let h = heartbeatFile, h.isEmpty { throw ValidationError("--heartbeat-file must not be empty: give the path of a file to touch") }
        _ = try training.deadline(timeLimit: timeLimit, from: Date())
        if output.resume == nil, let b = try? training.config().batchSize, b < workers {
            throw ValidationError("--batch \(b) is smaller than --workers \(workers): every worker needs at least one sample of each batch")
        }
        if output.resume == nil, let m = try? training.config().microBatches, workers > m {
            throw ValidationError("--workers \(workers) is more than the run's \(m) micro-batches (exact mode): every worker trains whole micro-batches, so give --micro-batches \(workers) or more (a divisor of --batch)")
        }
    }

    func run() throws {
        let started = Date()
        let log = logging.bootstrap("gan-coordinator")
        let heartbeat = try startHeartbeat(log)
        // SIGINT / SIGTERM: the steps already sent are trained, rank 0 writes the final checkpoint
        // and grid, and the run ends (spawned workers are in process groups of their own, so a
        // terminal's Ctrl-C reaches only this process).
        Interrupts.install(program: "gan-coordinator",
                           stopping: "finishing the steps already sent to the workers, then rank 0 writes a checkpoint and a sample grid (before the first step: ending at once, nothing to save)")
        guard let c = codec == "auto" ? CoordinatorOptions.Defaults.codec : GradientCodec(rawValue: codec) else {
            throw ValidationError("unknown --codec '\(codec)'")
        }
        // Everything up to the rendezvous: a failure here is the flags', the token's, the run
        // folder's, the data's or the port's, and a restart would meet it again (exit 2).
        let coordinator: Coordinator, config: GANConfig, runDir: String, dataset: ImageDataset, idle: String?
        var children: [Process] = []
        do {
            (coordinator, config, runDir, dataset, children, idle) = try prepare(codec: c, started: started, log: log)
        } catch let e as ValidationError {
            throw e
        } catch {
            log.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
        // Workers declared dead are killed (a stopped one too) and reaped; at the end every child
        // has exited or is killed, so the coordinator never waits on a frozen one.
        var killed: Set<Int32> = []
        coordinator.onDead = { pids in
            for p in children where pids.contains(p.processIdentifier) && p.isRunning {
                log.warning("killing spawned worker pid \(p.processIdentifier), declared dead")
                killed.insert(p.processIdentifier)
                kill(p.processIdentifier, SIGKILL)
            }
        }
        defer { reap(children, within: 0, log: log) }
        coordinator.shouldStop = { Interrupts.received != nil }
        if let heartbeat { coordinator.onTick = { heartbeat.beat() } }
        let progress = Progress(total: config.steps, label: "train", initial: 0)
        if let d = coordinator.options.deadline { progress.timeLeft = { d.timeIntervalSinceNow } }   // the ETA honours --time-limit
        do {
            try coordinator.run(dataset: dataset) { step in
                if json {
                    print(step.jsonLine())
                    fflush(nil)   // a line per step as it happens, also into a pipe
                } else {
                    progress.update(step.metrics.step, step.progressFields(config))
                }
            }
            progress.finish()
            reap(children, within: 30, log: log)
            try report(coordinator, config: config, runDir: runDir, idle: idle, log: log)
        } catch let e as ExitCode {
            throw e
        } catch {
            progress.finish()
            throw failed(error, children: children, killed: killed, runDir: runDir, log: log)
        }
    }

    /// The exit of a run that did not end normally: interrupted while the workers joined (the
    /// resume command, exit 130/143), or failed (exit 1, with a crashed spawned worker's last
    /// words: it said why only in its own log).
    func failed(_ error: Error, children: [Process], killed: Set<Int32>, runDir: String, log: Logger) -> ExitCode {
        if let stopped = error as? CoordinatorStopped {
            reap(children, within: 2, log: log)
            let signal = Interrupts.received ?? SIGINT
            log.notice("\(Interrupts.name(signal)): \(stopped); \(lastCheckpoint(runDir))")
            Interrupts.printResumeCommand(runPath: runDir)
            return ExitCode(Interrupts.exitStatus(signal))
        }
        log.critical("\(error)")
        if !children.isEmpty {
            // The survivors were told to stop and exit within moments.
            reap(children, within: 10, log: log)
            for line in crashes(of: children, killedByUs: killed, runDir: runDir) { log.critical("\(line)") }
        }
        return ExitCode(1)
    }

    /// Liveness for launchers (`--heartbeat-file`): made now (the data and the rendezvous take a
    /// while), then beaten by the coordinator's loop. A file that cannot be written: nothing
    /// could start (exit 2).
    func startHeartbeat(_ log: Logger) throws -> HeartbeatFile? {
        guard let h = heartbeatFile else { return nil }
        do { return try HeartbeatFile(path: h) } catch {
            log.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
    }

    /// How the run ended, once the workers are done: interrupted (the resume command, exit
    /// 130/143), stopped by the time limit, nothing to train, or done.
    func report(_ coordinator: Coordinator, config: GANConfig, runDir: String, idle: String?, log: Logger) throws {
        if let signal = Interrupts.received, let s = coordinator.stoppedByRequestAt {
            log.notice("\(Interrupts.name(signal)): stopped at step \(s) of \(config.steps); \(lastCheckpoint(runDir))")
            Interrupts.printResumeCommand(runPath: runDir)
            throw ExitCode(Interrupts.exitStatus(signal))
        }
        if let s = coordinator.stoppedByDeadlineAt { log.info("time limit reached: stopped at step \(s) of \(config.steps)") }
        if coordinator.stepsCompleted == 0 {
            // The workers came and went (so a restarted coordinator's workers end cleanly),
            // but not a "done" as if it had trained.
            log.notice("\(idle ?? "nothing to train: the run had no steps left"); nothing was trained")
        } else {
            log.info("done: samples in \(runDir)/samples, checkpoints in \(runDir)/checkpoints")
        }
    }

    /// Where the run's newest checkpoint is, as a phrase for the log.
    func lastCheckpoint(_ runDir: String) -> String {
        CheckpointStore(directory: runDir + "/checkpoints").latest().map { "the last checkpoint is \($0)" } ?? "no checkpoint was written"
    }

    /// Why spawned workers died by a signal this coordinator did not send: the signal, and the
    /// lines of the worker's log that say what failed (a Swift runtime error, a critical log
    /// line), else its last lines.
    func crashes(of children: [Process], killedByUs: Set<Int32>, runDir: String) -> [String] {
        var lines: [String] = []
        for (rank, p) in children.enumerated() where !p.isRunning && p.terminationReason == .uncaughtSignal
            && !killedByUs.contains(p.processIdentifier) {
            let sig = p.terminationStatus
            let logPath = runDir + "/logs/rank-\(rank).log"
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            let all = text.split(separator: "\n").map { String($0.prefix(400)) }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            let telling = all.filter { l in
                ["Fatal error", "Precondition failed", "Assertion failed", "critical", "error:"].contains { l.contains($0) }
            }
            let words = (telling.isEmpty ? Array(all.suffix(3)) : Array(telling.suffix(3))).joined(separator: " | ")
            lines.append("spawned rank \(rank) (pid \(p.processIdentifier)) crashed (signal \(sig), \(String(cString: strsignal(sig)))); "
                         + "its log \(logPath) says: \(words.isEmpty ? "nothing" : words)")
        }
        return lines
    }

    /// The run (resumed or new), the token, the data, the listening coordinator and, with
    /// --spawn, its workers; and why the run has nothing to train, if so.
    func prepare(codec c: GradientCodec, started: Date, log: Logger) throws
        -> (Coordinator, GANConfig, String, ImageDataset, [Process], String?) {
        let env = ProcessInfo.processInfo.environment
        var start = try RunStart(training: training, run: output)
        for w in start.warnings { log.warning("\(w)") }
        for note in start.notes { log.notice("\(note)") }
        let config = start.config
        guard config.batchSize >= workers else {
            throw ValidationError("--batch \(config.batchSize) is smaller than --workers \(workers): every worker needs at least one sample of each batch")
        }
        if let m = config.microBatches, workers > m {
            throw ValidationError("--workers \(workers) is more than the run's \(m) micro-batches (exact mode): every worker trains whole micro-batches, so give --micro-batches \(workers) or more (a divisor of --batch \(config.batchSize))")
        }
        var token = try Authenticator.loadToken(file: tokenFile, environment: ProcessInfo.processInfo.environment)
        if token == nil && spawn { token = Authenticator.challenge().map { String(format: "%02x", $0) }.joined() }
        guard let tok = token else { throw ValidationError("a shared token is required: --token-file FILE or RINGGAN_TOKEN (or --spawn)") }
        // --port, else MASTER_PORT (a bad one is a usage error, as in gan-worker), else 29500.
        let listenPort: UInt16
        do { listenPort = try port ?? LauncherEnvironment.masterPort(env) ?? LauncherEnvironment.defaultPort } catch { throw ValidationError("\(error)") }
        let dataset = try loadTrainingData(config)
        // A batch or channel count the data cannot give is the flags' fault (exit 64), said
        // before the coordinator listens or a worker is started.
        do { try config.checkFits(dataset) } catch { throw ValidationError("\(error)") }
        // A new run's folder is its own (rank 0 writes into it; two runs never share one).
        let claimed = try start.claimFolder()
        let runDir = URL(fileURLWithPath: start.path).standardizedFileURL.path
        // Temporaries of a checkpoint or grid writer killed mid-write (a rank 0 of an earlier life).
        for p in RunFolder(path: runDir).removeStaleTemporaries() { log.notice("removed \(p): a temporary file left by a writer that was killed before it finished") }
        var o = CoordinatorOptions(workers: workers, token: tok, config: config, runDir: runDir)
        o.minWorkers = minWorkers
        o.host = host ?? env["MASTER_ADDR"] ?? LauncherEnvironment.defaultHost
        o.port = listenPort
        o.sampleEvery = output.sampleEvery; o.logEvery = output.logEvery; o.checkpointEvery = output.checkpointEvery; o.keep = output.keep
        // Absolute, as the run folder: the workers read it from their own working folders.
        o.resume = start.resume.map { URL(fileURLWithPath: $0.path).standardizedFileURL.path }
        o.resumeNewest = output.resume == RunStart.auto
        o.codec = c; o.autoCodec = codec == "auto"; o.hierarchy = hierarchy == "auto"; o.level = zstdLevel; o.checksumEvery = checksumEvery; o.prefetch = prefetch
        o.deadAfter = deadAfter; o.rendezvousTimeout = rendezvousTimeout; o.ioTimeout = ioTimeout
        o.deadline = try training.deadline(timeLimit: timeLimit, from: started)
        let coordinator: Coordinator
        do { coordinator = try Coordinator(options: o, logger: log) } catch {
            if claimed { start.abandonFolder() }   // the port: the same command may be run again
            throw error
        }
        log.info("run \(runDir): \(config.model.rawValue), \(config.loss.rawValue), \(workers) worker\(workers == 1 ? "" : "s"), batch \(config.batchSize) (\(config.batchSize % workers == 0 ? "\(config.batchSize / workers) per worker" : "spread unevenly")), codec \(codec == "auto" ? "auto (\(c.rawValue) or raw, chosen by each ring)" : c.rawValue)\(config.microBatches.map { ", exact mode: \($0) micro-batches of \(config.batchSize / $0)" } ?? "")")
        var children: [Process] = []
        if spawn {
            children = try spawnWorkers(count: workers, port: coordinator.port, token: tok, runDir: runDir, log: log)
        }
        return (coordinator, config, runDir, dataset, children, start.nothingToTrain(training))
    }

    /// Waits up to `within` seconds for the children to exit, then kills the rest (SIGTERM, then
    /// SIGKILL, which also ends a stopped process) and waits for them.
    func reap(_ children: [Process], within: Double, log: Logger) {
        let until = Date().addingTimeInterval(within)
        while children.contains(where: { $0.isRunning }) && Date() < until { usleep(50_000) }
        for p in children where p.isRunning { p.terminate() }
        let grace = Date().addingTimeInterval(2)
        while children.contains(where: { $0.isRunning }) && Date() < grace { usleep(50_000) }
        for p in children where p.isRunning {
            log.warning("worker pid \(p.processIdentifier) did not exit; killing it")
            kill(p.processIdentifier, SIGKILL)
        }
        for p in children { p.waitUntilExit() }
    }

    func spawnWorkers(count: Int, port: UInt16, token: String, runDir: String, log: Logger) throws -> [Process] {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("gan-worker")
        guard FileManager.default.isExecutableFile(atPath: exe.path) else { throw ValidationError("--spawn: \(exe.path) is not there; build gan-worker") }
        try FileManager.default.createDirectory(atPath: runDir + "/logs", withIntermediateDirectories: true)
        var env = ProcessInfo.processInfo.environment
        env["RINGGAN_TOKEN"] = token
        env["RINGGAN_THREADS"] = "\(workerThreads)"
        env["OPENBLAS_NUM_THREADS"] = "1"
        return try (0..<count).map { r in
            let p = Process()
            p.executableURL = exe
            // Children of this coordinator end with it: a restarted one spawns its own.
            p.arguments = ["--rank", "\(r)", "--coordinator", "\(LauncherEnvironment.defaultHost):\(port)", "--ring-host", LauncherEnvironment.defaultHost, "--rejoin-timeout", "0"]
            p.environment = env
            let logPath = runDir + "/logs/rank-\(r).log"
            FileManager.default.createFile(atPath: logPath, contents: nil)
            let h = FileHandle(forWritingAtPath: logPath)
            p.standardOutput = h
            p.standardError = h
            try p.run()
            log.info("spawned rank \(r) (pid \(p.processIdentifier)), log \(logPath)")
            return p
        }
    }
}

BLASRuntime.selectKernels()
ProcessEnvironment.applyOrExit("gan-coordinator")
CoordinatorCommand.main()
