import Datasets
import Foundation
import Telemetry
import Tensors

/// The environment variables the libraries honour, read in one place by the executables at
/// start-up and handed to the libraries as settings (the libraries never read the environment):
///
/// | variable | goes to | meaning |
/// |---|---|---|
/// | `RINGGAN_THREADS` | `ThreadPool.defaultThreads` | engine threads when `--threads` is not given |
/// | `RINGGAN_BLOCK_CACHE_MB` | `TensorMemory.blockCacheBytes` | freed large blocks kept for reuse |
/// | `RINGGAN_DATA`, `RINGGAN_CACHE`, `HOME`, `XDG_DATA_HOME`, `XDG_CACHE_HOME` | `DataRoot.environment` | where the digits and the classifier are |
/// | `COLUMNS` | `Progress.fallbackColumns` | the progress line's width when not on a terminal |
///
/// A bad value of RingGAN's own variables is a usage error naming the variable (exit 64);
/// `COLUMNS` belongs to the shell and is ignored when it is not a positive number.
/// `gan-worker` reads its schedule's variables (`RINGGAN_BUCKET_MB`, `RINGGAN_OVERLAP`) and the
/// launchers' itself; `OPENBLAS_CORETYPE` is OpenBLAS's (`BLASRuntime.selectKernels`).
public enum ProcessEnvironment {
    /// `RINGGAN_THREADS`, when set.
    public private(set) nonisolated(unsafe) static var threads: Int?

    /// Reads the variables and sets the libraries' settings.
    public static func apply(_ env: [String: String]) throws {
        if let s = env["RINGGAN_THREADS"] {
            guard let n = Int(s), FlagCheck.threads.contains(n) else {
                throw EnvironmentError("RINGGAN_THREADS=\(s): expected a thread count from \(FlagCheck.threads.lowerBound) to \(FlagCheck.threads.upperBound)")
            }
            threads = n
            ThreadPool.defaultThreads = n
        }
        if let s = env["RINGGAN_BLOCK_CACHE_MB"] {
            guard let mb = Int(s), (0...(1 << 20)).contains(mb) else {
                throw EnvironmentError("RINGGAN_BLOCK_CACHE_MB=\(s): expected megabytes from 0 (keep no freed blocks) to 1048576")
            }
            TensorMemory.blockCacheBytes = mb << 20
        }
        DataRoot.environment = env.filter { DataRoot.variables.contains($0.key) }
        if let c = env["COLUMNS"].flatMap(Int.init), c > 0 { Progress.fallbackColumns = c }
    }

    /// `apply` for an executable's first line: a bad value ends the process with exit 64 and
    /// a sentence naming the variable.
    public static func applyOrExit(_ executable: String) {
        do { try apply(ProcessInfo.processInfo.environment) } catch {
            FileHandle.standardError.write(Data("\(executable): error: \(error)\n".utf8))
            exit(64)
        }
    }
}

/// A RingGAN environment variable with a value it cannot use.
public struct EnvironmentError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
