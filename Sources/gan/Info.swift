import ArgumentParser
import Tensors
import TrainingCLI

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print which OpenBLAS kernels run, the thread count and the CPU features seen.")
    @OptionGroup var logging: LogOptions

    func run() {
        _ = logging.bootstrap("gan")
        let flags = BLASRuntime.cpuFlags
        print("openblas core:     \(BLASRuntime.coreName)")
        print("selection:         \(BLASRuntime.selectionNote)")
        print("best for this CPU: \(BLASRuntime.bestCoreType(flags: flags) ?? "generic")")
        print("engine threads:    \(ThreadPool.shared.threads) (RINGGAN_THREADS or --threads; OpenBLAS runs 1 per call, the engine splits GEMMs)")
        print("openblas config:   \(BLASRuntime.config)")
        let simd = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"].filter(flags.contains)
        print("cpu features:      \(simd.joined(separator: " "))")
    }
}
