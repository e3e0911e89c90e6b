import Tensors

/// What `--version` of the three executables prints: the version, the build, and the kernels
/// this process runs (the lines `gan info` starts with).
public enum BuildInfo {
    /// RingGAN's version, set by hand; no release has been tagged yet.
    public static let version = "0.1.0-dev"

    /// "debug" or "release".
    public static var build: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    /// The OpenBLAS kernels that run here, how they were chosen, and OpenBLAS's build.
    public static var kernelLines: [String] {
        ["openblas core:     \(BLASRuntime.coreName)",
         "selection:         \(BLASRuntime.selectionNote)",
         "openblas config:   \(BLASRuntime.config)"]
    }

    /// `--version`'s text for `program` (after `BLASRuntime.selectKernels()`, so that the kernels
    /// named are the ones a run would use).
    public static func versionText(_ program: String) -> String {
        (["\(program) (RingGAN) \(version), \(build) build"] + kernelLines).joined(separator: "\n")
    }
}
