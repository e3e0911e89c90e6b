import Datasets
import TestSupport
import Telemetry
import TrainingCLI
import XCTest
@testable import Tensors

/// The environment variables the libraries honour are read once, by the executables
/// (`ProcessEnvironment`), and handed to the libraries as settings; a bad value of one of
/// RingGAN's own is a usage error naming it.
final class ProcessEnvironmentTests: XCTestCase {
    override func tearDown() {
        ThreadPool.defaultThreads = 0
        TensorMemory.blockCacheBytes = 1 << 30
        DataRoot.environment = [:]
        Progress.fallbackColumns = nil
    }

    func testVariablesBecomeTheLibrariesSettings() throws {
        try ProcessEnvironment.apply(["RINGGAN_THREADS": "3", "RINGGAN_BLOCK_CACHE_MB": "5", "COLUMNS": "77",
                                      "RINGGAN_DATA": "/somewhere", "PATH": "/bin"])
        XCTAssertEqual(ThreadPool.defaultThreads, 3)
        XCTAssertEqual(ProcessEnvironment.threads, 3)
        XCTAssertEqual(TensorMemory.blockCacheBytes, 5 << 20)
        XCTAssertEqual(Progress.fallbackColumns, 77)
        XCTAssertEqual(DataRoot.environment, ["RINGGAN_DATA": "/somewhere"], "only the location variables are kept")
        XCTAssertEqual(DataRoot.path, "/somewhere")
        // Unset: the libraries' own defaults.
        ThreadPool.defaultThreads = 0
        XCTAssertEqual(ThreadPool.defaultThreads, ThreadPool.onlineCores)
        // COLUMNS is the shell's: a value that is no width is ignored, not an error.
        Progress.fallbackColumns = nil
        try ProcessEnvironment.apply(["COLUMNS": "wide"])
        XCTAssertNil(Progress.fallbackColumns)
    }

    func testBadValuesNameTheVariable() {
        for (name, value) in [("RINGGAN_THREADS", "0"), ("RINGGAN_THREADS", "many"), ("RINGGAN_BLOCK_CACHE_MB", "-1"),
                              ("RINGGAN_BLOCK_CACHE_MB", "1GB")] {
            XCTAssertThrowsError(try ProcessEnvironment.apply([name: value]), "\(name)=\(value)") {
                XCTAssertTrue("\($0)".hasPrefix("\(name)=\(value): expected"), "\($0)")
            }
        }
    }

    /// The executable: a bad value ends it with the usage status before it does anything.
    func testTheExecutableRefusesABadValueWithUsageStatus() throws {
        let work = try makeTempDir(self)
        let r = try runProcess(ganBinary, ["info"], cwd: work, env: ["RINGGAN_THREADS": "lots"])
        XCTAssertEqual(r.status, 64, r.both)
        XCTAssertTrue(r.stderr.contains("RINGGAN_THREADS=lots"), r.stderr)
    }
}
