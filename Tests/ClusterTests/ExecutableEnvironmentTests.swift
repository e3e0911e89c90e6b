import Foundation
import TestSupport
import XCTest

/// The environment variables the executables read (and only they: the libraries take options)
/// are checked like flags: a bad value is a usage error (exit 64) naming the variable, never
/// silently replaced by a default.
extension ClusterTests {
    func testBadScheduleAndPortVariablesAreUsageErrors() throws {
        let worker = ["--rank", "0", "--coordinator", "127.0.0.1:1", "--token-file", "token", "--connect-timeout", "1"]
        for (name, value, says) in [("RINGGAN_BUCKET_MB", "four", "RINGGAN_BUCKET_MB=four"),
                                    ("RINGGAN_BUCKET_MB", "-1", "RINGGAN_BUCKET_MB=-1"),
                                    ("RINGGAN_OVERLAP", "yes", "RINGGAN_OVERLAP=yes")] {
            let w = try launch("gan-worker", worker, log: "worker-\(name)-\(value).log", env: [name: value])
            XCTAssertEqual(wait(w, within: 30), 64, "\(name)=\(value): \(text("worker-\(name)-\(value).log"))")
            XCTAssertTrue(text("worker-\(name)-\(value).log").contains(says), text("worker-\(name)-\(value).log"))
        }
        // The coordinator reads MASTER_PORT as the worker does: a bad one is an error in both.
        let c = try launch("gan-coordinator", ["--workers", "1", "--token-file", "token"] + trainArgs(steps: 1, name: "badport"),
                           log: "coord-port.log", env: ["MASTER_PORT": "70000"])
        XCTAssertEqual(wait(c, within: 30), 64, text("coord-port.log"))
        XCTAssertTrue(text("coord-port.log").contains("MASTER_PORT='70000' is not a port"), text("coord-port.log"))
    }
}
