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
        let kernels = BuildInfo.kernelLines   // core, selection, config: what --version shows
        print(kernels[0])
        print(kernels[1])
        print("best for this CPU: \(BLASRuntime.bestCoreType(flags: flags) ?? "generic")")
        print("engine threads:    \(ThreadPool.shared.threads) (RINGGAN_THREADS or --threads; OpenBLAS runs 1 per call, the engine splits GEMMs)")
        print(kernels[2])
        let simd = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"].filter(flags.contains)
        print("cpu features:      \(simd.joined(separator: " "))")
    }
}
