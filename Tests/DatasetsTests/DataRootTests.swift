import Foundation
import TestSupport
import XCTest
@testable import Datasets

/// The data folder is found wherever a command runs.
final class DataRootTests: XCTestCase {
    func testSearchOrder() throws {
        let tmp = try makeTempDir(self)
        let fm = FileManager.default
        let repo = tmp + "/repo", prefix = tmp + "/prefix", home = tmp + "/home", elsewhere = tmp + "/elsewhere"
        for d in [repo + "/.build/x86_64-unknown-linux-gnu/release", prefix + "/bin", elsewhere] {
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        let built = repo + "/.build/x86_64-unknown-linux-gnu/release/gan", installed = prefix + "/bin/gan"
        func resolve(_ env: [String: String], cwd: String, exe: String?) -> String {
            DataRoot.resolve(environment: env, currentDirectory: cwd, executable: exe)
        }
        let env = ["HOME": home]
        // Nothing anywhere: ./data, where set-up would put it.
        XCTAssertEqual(resolve(env, cwd: elsewhere, exe: built), elsewhere + "/data")
        // The per-user folder.
        try fm.createDirectory(atPath: home + "/.local/share/ringgan/data/mnist-5k", withIntermediateDirectories: true)
        XCTAssertEqual(resolve(env, cwd: elsewhere, exe: built), home + "/.local/share/ringgan/data")
        XCTAssertEqual(resolve(["XDG_DATA_HOME": tmp + "/xdg"], cwd: elsewhere, exe: nil), elsewhere + "/data")
        // The source tree the binary was built in comes before it.
        try fm.createDirectory(atPath: repo + "/data/mnist-5k", withIntermediateDirectories: true)
        XCTAssertEqual(resolve(env, cwd: elsewhere, exe: built), repo + "/data")
        // An installation's share folder, for <prefix>/bin/gan.
        try fm.createDirectory(atPath: prefix + "/share/ringgan/data/mnist-5k", withIntermediateDirectories: true)
        XCTAssertEqual(resolve(env, cwd: elsewhere, exe: installed), prefix + "/share/ringgan/data")
        // ./data before both; RINGGAN_DATA before everything.
        try fm.createDirectory(atPath: elsewhere + "/data/mnist-5k", withIntermediateDirectories: true)
        XCTAssertEqual(resolve(env, cwd: elsewhere, exe: installed), elsewhere + "/data")
        XCTAssertEqual(resolve(env.merging(["RINGGAN_DATA": "/custom"]) { $1 }, cwd: elsewhere, exe: installed), "/custom")
    }

    /// `gan train` from a folder that is not the repository root finds the digits (the source
    /// tree's, since this binary was built there), and with RINGGAN_DATA pointing at nothing the
    /// error says where it looked and how to get the data.
    func testGanTrainFromAnotherFolder() throws {
        let tmp = try makeTempDir(self)
        var env = ["RINGGAN_DATA": ""]
        if ProcessInfo.processInfo.environment["HOME"] == nil { env["HOME"] = tmp }
        let ok = try runProcess(ganBinary, ["train", "--model", "mlp", "--steps", "1", "--batch", "8", "--sample-every", "0",
                                            "--checkpoint-every", "0", "--name", "elsewhere"], cwd: tmp, env: env)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("/data/mnist-5k/train-images-idx3-ubyte"), ok.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp + "/runs/elsewhere/checkpoints/step_00000001.rgan"))
        let missing = try runProcess(ganBinary, ["train", "--model", "mlp", "--steps", "1"], cwd: tmp,
                                     env: ["RINGGAN_DATA": tmp + "/nothing-here"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains(tmp + "/nothing-here/mnist-5k"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("RINGGAN_DATA"), missing.stderr)
    }
}
