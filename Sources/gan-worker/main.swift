import ArgumentParser
import Collectives
import Cluster
import Foundation
import Logging
import Telemetry
import Tensors
import TrainingCLI

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan-worker",
        abstract: "A RingGAN data-parallel worker: joins the coordinator, forms the ring, trains on the shards it is sent.",
        discussion: """
        Flags fall back to the launcher's environment variables, so the same command runs under \
        torchrun, Kubernetes (Kubeflow PyTorchJob, StatefulSet) and docker-compose (RANK, \
        WORLD_SIZE, MASTER_ADDR, MASTER_PORT), OpenMPI's mpirun (OMPI_COMM_WORLD_RANK, \
        OMPI_COMM_WORLD_SIZE) and Slurm's srun (SLURM_PROCID, SLURM_NTASKS, the coordinator on the \
        first host of SLURM_JOB_NODELIST); RINGGAN_COORDINATOR=host:port names the coordinator \
        under any of them. RINGGAN_TOKEN holds the shared token. \
        The engine runs one thread per worker unless --threads or RINGGAN_THREADS says otherwise.
        While a step's generator gradients are summed, the worker computes the next step's \
        real-image pass through D (the same numbers; RINGGAN_OVERLAP=0 turns it off, 1 is the \
        default); RINGGAN_BUCKET_MB sets the gradient buckets summed during backward (MB, 0 to \
        4096; default 4, 0: none). Other values of either are a usage error (exit 64).

        A worker may start before its coordinator: it says at once that it is waiting for it, \
        tries again with waits of 0.25 s doubling up to 1 s (each try logged) for --connect-timeout \
        seconds, and then exits 1 naming that flag.

        If the connection to the coordinator is lost (it died, or the network failed), the worker \
        stops training at once and keeps trying to reach the coordinator's address for \
        --rejoin-timeout seconds (waits of 0.25 s doubling up to 5 s, each attempt logged); a \
        coordinator restarted with --resume auto takes it back with the same rank and the run \
        goes on from the run's newest checkpoint. When the time passes it exits 1 naming the \
        address and how long it waited. A coordinator that says stop (without re-forming), or \
        sends a message the worker refuses, ends it at once; a stop or a lost coordinator also \
        cuts short a ring formation that waits for a peer. A coordinator interrupted (SIGINT, \
        SIGTERM) while the ring forms tells the workers to end: they exit 0, nothing trained.

        A worker the coordinator declared dead (silent for its --dead-after, or its connection \
        lost) that comes back while the run goes on (a frozen process resumed, a network that \
        healed) is refused at once with the reason: the ring re-formed without that process; a \
        restarted worker (a new process) may take a free rank when the ring next re-forms.

        Exit status: 0 the run finished; 1 it failed (the reason is also sent to the coordinator) \
        or the coordinator was lost; 3 the coordinator refused this worker, naming why (its rank \
        is taken or out of range, or this process was declared dead and is not readmitted); 64 a \
        flag or launcher variable is malformed or out of its range.
        """,
        version: BuildInfo.versionText("gan-worker"))

    @Option(parsing: .unconditional, help: "This worker's rank (default: $RANK, $OMPI_COMM_WORLD_RANK or $SLURM_PROCID).") var rank: Int?
    @Option(help: "Coordinator host:port (default: $MASTER_ADDR:$MASTER_PORT, else $RINGGAN_COORDINATOR, else the first host of $SLURM_JOB_NODELIST, else \(LauncherEnvironment.defaultHost):\(LauncherEnvironment.defaultPort)).") var coordinator: String?
    @Option(help: "File holding the shared token (default: $RINGGAN_TOKEN).") var tokenFile: String?
    @Option(help: "Address the ring listener binds (default \(WorkerOptions.anyAddress), which binds only the advertised address, not every interface).")
    var ringHost: String = WorkerOptions.anyAddress
    @Option(parsing: .unconditional, help: "Port of the ring listener (0: any free port).") var ringPort: UInt16 = 0
    @Option(help: "Address other workers use to reach this one (default: the address this worker reaches the coordinator from; $POD_IP when set).")
    var advertise: String?
    @Option(help: "Name of the machine this worker runs on (default: its advertised address). Where every machine has the same number (two or more) of workers with consecutive ranks, the coordinator reduces gradients by machine: among a machine's workers first, then one ring between machines (the same sums, bit for bit; gan-coordinator --hierarchy).")
    var node: String?
    @Option(parsing: .unconditional, help: "Threads (cores) this worker's engine uses (default: $RINGGAN_THREADS, else 1).") var threads: Int?
    @Option(parsing: .unconditional, help: "Seconds to keep trying to reach the coordinator at the start (each try is logged; then exit 1 naming this flag).")
    var connectTimeout: Double = WorkerOptions.defaultConnectTimeout
    @Option(parsing: .unconditional, help: "Seconds to keep trying to rejoin a coordinator that was lost, so that a restarted one (--resume auto) takes this worker back (0: exit at once).")
    var rejoinTimeout: Double = WorkerOptions.defaultRejoinTimeout
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.atLeast("--rank", rank, 0)
        if let node, node.isEmpty || node.utf8.count > 255 || node.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError("--node '\(node)': expected a machine's name of 1 to 255 printable characters")
        }
        try FlagCheck.range("--threads", threads, FlagCheck.threads)
        try FlagCheck.range("--connect-timeout", connectTimeout, 0...FlagCheck.maxSeconds, "seconds")
        try FlagCheck.range("--rejoin-timeout", rejoinTimeout, 0...FlagCheck.maxSeconds, "seconds; 0: exit at once")
    }

    /// The data-parallel schedule's variables: RINGGAN_BUCKET_MB (MB, at least 0) and
    /// RINGGAN_OVERLAP (0 or 1); anything else is a usage error naming the variable.
    static func schedule(_ env: [String: String]) throws -> (bucketFloats: Int?, overlaps: Bool) {
        var floats: Int?
        if let s = env["RINGGAN_BUCKET_MB"] {
            guard let mb = Double(s), mb >= 0, mb <= 4096 else {
                throw ValidationError("RINGGAN_BUCKET_MB=\(s): expected a size in MB from 0 to 4096 (0: sum the gradients after backward)")
            }
            floats = Int(mb * 262_144)
        }
        let overlap = env["RINGGAN_OVERLAP"] ?? "1"
        guard overlap == "0" || overlap == "1" else {
            throw ValidationError("RINGGAN_OVERLAP=\(overlap): expected 0 (off) or 1 (on, the default)")
        }
        return (floats, overlap == "1")
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        // Rank and coordinator: the flags, else the launcher's variables (LauncherEnvironment.swift).
        let launch: LauncherEnvironment
        do { launch = try LauncherEnvironment.resolve(rank: rank, coordinator: coordinator, environment: env) }
        catch { throw ValidationError("\(error)") }
        let r = launch.rank
        let log = logging.bootstrap("gan-worker", rank: r)
        log.info("rank \(r)\(launch.worldSize.map { " of \($0)" } ?? "") (\(launch.launcher)), coordinator \(launch.coordinatorHost):\(launch.coordinatorPort) (\(launch.coordinatorSource))")
        let (host, port) = (launch.coordinatorHost, launch.coordinatorPort)
        guard let token = try Authenticator.loadToken(file: tokenFile, environment: ProcessInfo.processInfo.environment) else {
            throw ValidationError("a shared token is required: --token-file FILE or RINGGAN_TOKEN")
        }
        ThreadPool.setThreads(threads ?? ProcessEnvironment.threads ?? 1)
        var o = WorkerOptions(rank: r, coordinatorHost: host, coordinatorPort: port, token: token)
        o.ringHost = ringHost
        o.ringPort = ringPort
        o.advertiseHost = advertise ?? env["POD_IP"]
        o.connectTimeout = connectTimeout
        o.rejoinTimeout = rejoinTimeout
        o.node = node
        (o.bucketFloats, o.overlapsRealPass) = try Self.schedule(env)
        do {
            try WorkerProcess(options: o, logger: log).run()
        } catch let refused as WorkerRefused {
            log.critical("\(refused)")
            throw ExitCode(WorkerRefused.exitStatus)
        } catch {
            log.critical("\(error)")
            throw ExitCode(1)
        }
    }
}

BLASRuntime.selectKernels()
ProcessEnvironment.applyOrExit("gan-worker")
Worker.main()
