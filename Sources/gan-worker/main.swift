import ArgumentParser
import Collectives
import Cluster
import Foundation
import Logging
import Telemetry
import Tensors

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan-worker",
        abstract: "A RingGAN data-parallel worker: joins the coordinator, forms the ring, trains on the shards it is sent.",
        discussion: """
        Flags fall back to torchrun-style environment variables, so the same command runs under \
        Kubernetes (Kubeflow PyTorchJob, StatefulSet), Slurm and docker-compose: RANK for --rank, \
        MASTER_ADDR and MASTER_PORT for --coordinator, RINGGAN_TOKEN for the shared token. \
        The engine runs one thread per worker unless --threads or RINGGAN_THREADS says otherwise.
        """)

    @Option(help: "This worker's rank (default: $RANK).") var rank: Int?
    @Option(help: "Coordinator host:port (default: $MASTER_ADDR:$MASTER_PORT, else 127.0.0.1:29500).") var coordinator: String?
    @Option(help: "File holding the shared token (default: $RINGGAN_TOKEN).") var tokenFile: String?
    @Option(help: "Address the ring listener binds.") var ringHost: String = "0.0.0.0"
    @Option(help: "Port of the ring listener (0: any free port).") var ringPort: UInt16 = 0
    @Option(help: "Address other workers use to reach this one (default: the address this worker reaches the coordinator from; $POD_IP when set).")
    var advertise: String?
    @Option(help: "Threads (cores) this worker's engine uses (default: $RINGGAN_THREADS, else 1).") var threads: Int?
    @Option(help: "Seconds to keep trying to reach the coordinator.") var connectTimeout: Double = 120
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        guard let level = parseLogLevel(logLevel) else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard let r = rank ?? env["RANK"].flatMap(Int.init) else { throw ValidationError("no --rank given and RANK is not set") }
        _ = bootstrapLogging(level: level, rank: r)
        let log = Logger(label: "gan-worker")
        let address = coordinator ?? env["MASTER_ADDR"].map { "\($0):\(env["MASTER_PORT"] ?? "29500")" } ?? "127.0.0.1:29500"
        let (host, port) = try parseAddress(address)
        guard let token = try Authenticator.loadToken(file: tokenFile) else {
            throw ValidationError("a shared token is required: --token-file FILE or RINGGAN_TOKEN")
        }
        ThreadPool.setThreads(threads ?? env["RINGGAN_THREADS"].flatMap(Int.init) ?? 1)
        var o = WorkerOptions(rank: r, coordinatorHost: host, coordinatorPort: port, token: token)
        o.ringHost = ringHost
        o.ringPort = ringPort
        o.advertiseHost = advertise ?? env["POD_IP"]
        o.connectTimeout = connectTimeout
        do {
            try WorkerProcess(options: o, logger: log).run()
        } catch {
            log.critical("\(error)")
            throw ExitCode(1)
        }
    }
}

BLASRuntime.selectKernels()
Worker.main()
