import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which OpenBLAS kernels run, and choosing the right ones.
///
/// Debian's OpenBLAS 0.3.21 does not recognise some recent CPUs and falls back to its generic
/// `Prescott` kernels, about 5x slower than the AVX-512 ones the CPU could run. OpenBLAS reads
/// `OPENBLAS_CORETYPE` only when it loads, so `selectKernels()` sets it and re-executes the
/// program once, before any work is done. A value the user (or the machine) already set is never
/// overridden.
public enum BLASRuntime {
    /// The kernel family OpenBLAS chose, e.g. "SkylakeX", "Cooperlake", "Haswell", "Prescott".
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// OpenBLAS's build configuration string.
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets OpenBLAS's thread count for this process.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// CPU feature flags from /proc/cpuinfo (empty where it cannot be read).
    public static var cpuFlags: Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            if let colon = line.firstIndex(of: ":") {
                return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
            }
        }
        return []
    }

    /// Generic kernels OpenBLAS falls back to when it does not know the CPU.
    static let fallbackCores: Set<String> = ["Prescott", "Core2", "Katmai", "Coppermine", "Northwood", "Banias",
                                             "Atom", "Nehalem", "Dunnington", "Penryn", "unknown"]

    /// The OPENBLAS_CORETYPE these CPU flags support best, or nil if none beats the fallback.
    public static func bestCoreType(flags: Set<String>) -> String? {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        if flags.contains("avx") { return "SandyBridge" }
        return nil
    }

    /// What `selectKernels` would do, as a sentence (for `gan info`).
    public static var selectionNote: String {
        if let v = getenv("OPENBLAS_CORETYPE") {
            let set = String(cString: v)
            if getenv(reexecMarker) != nil { return "OPENBLAS_CORETYPE=\(set) set by RingGAN (OpenBLAS had chosen generic kernels)" }
            return "OPENBLAS_CORETYPE=\(set) set by the environment (respected)"
        }
        return "OPENBLAS_CORETYPE unset; OpenBLAS detected the CPU itself"
    }

    static let reexecMarker = "RINGGAN_OPENBLAS_REEXEC"

    /// If OpenBLAS fell back to generic kernels on a CPU that has better ones and the user has not
    /// set OPENBLAS_CORETYPE, sets it and re-executes this program (once). Call first in `main`.
    public static func selectKernels() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv(reexecMarker) == nil else { return }
        guard fallbackCores.contains(coreName), let best = bestCoreType(flags: cpuFlags) else { return }
        setenv("OPENBLAS_CORETYPE", best, 1)
        setenv(reexecMarker, "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // exec failed: carry on with the kernels we have.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(reexecMarker)
    }
}
