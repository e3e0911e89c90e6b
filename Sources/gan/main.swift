import ArgumentParser
import Tensors

struct Gan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "RingGAN: GAN training in Swift, from the tensor up.",
        subcommands: [Info.self])
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print which OpenBLAS kernels run, the thread count and the CPU features seen.")

    func run() {
        let flags = BLASRuntime.cpuFlags
        print("openblas core:    \(BLASRuntime.coreName)")
        print("selection:        \(BLASRuntime.selectionNote)")
        print("best for this CPU: \(BLASRuntime.bestCoreType(flags: flags) ?? "generic")")
        print("openblas threads: \(BLASRuntime.threads)")
        print("openblas config:  \(BLASRuntime.config)")
        let simd = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"].filter(flags.contains)
        print("cpu features:     \(simd.joined(separator: " "))")
    }
}

BLASRuntime.selectKernels()
Gan.main()
