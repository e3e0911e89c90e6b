import Foundation
import TestSupport
import TrainingCLI
import XCTest

/// `--version` of all three executables: the version, the build, and the kernels the process
/// runs, the same lines `gan info` shows.
final class VersionTests: XCTestCase {
    func testEveryExecutableTellsItsVersionAndKernels() throws {
        let work = try makeTempDir(self)
        let info = try runProcess(builtExecutable("gan"), ["info"], cwd: work)
        XCTAssertEqual(info.status, 0, info.both)
        let core = info.stdout.split(separator: "\n").first { $0.hasPrefix("openblas core:") }.map(String.init)
        XCTAssertNotNil(core, info.stdout)
        for exe in ["gan", "gan-coordinator", "gan-worker"] {
            let r = try runProcess(builtExecutable(exe), ["--version"], cwd: work)
            XCTAssertEqual(r.status, 0, "\(exe) --version: " + r.both)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, "\(exe) (RingGAN) \(BuildInfo.version), \(BuildInfo.build) build", r.stdout)
            XCTAssertTrue(lines.contains(core ?? "?"), "\(exe) --version does not name the kernels gan info shows:\n" + r.stdout)
            XCTAssertTrue(lines.contains { $0.hasPrefix("selection:") } && lines.contains { $0.hasPrefix("openblas config:") }, r.stdout)
        }
    }
}
