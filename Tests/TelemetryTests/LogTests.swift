import Foundation
import Telemetry
import TestSupport
import XCTest

final class LogTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var all: [String] = []
        func add(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
    }

    func testLineFormat() {
        XCTAssertEqual(LineLogHandler.isoTime(0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(LineLogHandler.isoTime(1_795_949_786.8839), "2026-11-29T10:56:26.883Z")
        XCTAssertEqual(LineLogHandler.format(time: 0, level: .info, label: "gan.train", message: "checkpoint written",
                                             metadata: ["step": "500", "path": "runs/a b/x.rgan", "rank": "2"]),
                       "1970-01-01T00:00:00.000Z info gan.train [rank 2] checkpoint written path=\"runs/a b/x.rgan\" step=500")
        XCTAssertEqual(LineLogHandler.format(time: 0, level: .warning, label: "w", message: "two\nlines", metadata: [:]),
                       "1970-01-01T00:00:00.000Z warning w two lines")
        XCTAssertEqual(LineLogHandler.quote("plain"), "plain")
        XCTAssertEqual(LineLogHandler.quote(""), "\"\"")
        XCTAssertEqual(LineLogHandler.quote("a=b"), "\"a=b\"")
        XCTAssertEqual(LineLogHandler.quote("say \"hi\""), "\"say \\\"hi\\\"\"")
    }

    func testLoggerThroughTheHandler() {
        let lines = Lines()
        var log = Logger(label: "gan.worker") { label in
            LineLogHandler(label: label, level: .notice, metadata: ["rank": "3"], output: { lines.add($0) }, clock: { 86_400.5 })
        }
        log.info("hidden below notice")
        log.notice("joined the ring", metadata: ["peer": "10.0.0.2:29500"])
        log[metadataKey: "epoch"] = "1"
        log.error("lost a peer")
        log.logLevel = .trace
        log.debug("now shown")
        XCTAssertEqual(lines.all, [
            "1970-01-02T00:00:00.500Z notice gan.worker [rank 3] joined the ring peer=10.0.0.2:29500\n",
            "1970-01-02T00:00:00.500Z error gan.worker [rank 3] lost a peer epoch=1\n",
            "1970-01-02T00:00:00.500Z debug gan.worker [rank 3] now shown epoch=1\n",
        ])
        XCTAssertEqual(parseLogLevel("WARNING"), .warning)
        XCTAssertNil(parseLogLevel("loud"))
        XCTAssertEqual(logLevelNames, ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    }

    /// --log-level on the command line: validated, and it filters.
    func testLogLevelFlag() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnistFolder), "\(mnistFolder) is missing: run scripts/setup.sh")
        let work = try makeTempDir(self)
        let bad = try gan(["info", "--log-level", "loud"], cwd: work, expect: 64)
        XCTAssertTrue(bad.stderr.contains("unknown --log-level 'loud'"), bad.stderr)
        let common = ["train", "--model", "mlp", "--steps", "2", "--batch", "8", "--data", mnistFolder, "--sample-every", "1"]
        let debug = try gan(common + ["--name", "d", "--log-level", "debug"], cwd: work)
        XCTAssertTrue(debug.stderr.contains(" debug gan.train sample grid written latent_spread="), debug.stderr)
        XCTAssertTrue(debug.stderr.contains(" path=runs/d/samples/step_00000001.png step=1"), debug.stderr)
        let quiet = try gan(common + ["--name", "q", "--log-level", "warning"], cwd: work)
        XCTAssertEqual(quiet.stderr, "", "nothing at warning level or above")
        XCTAssertTrue(quiet.stdout.contains("train 2/2"), quiet.stdout)
        for cmd in [["sample"], ["export"], ["evaluate"], ["train-classifier"], ["interpolate"], ["style-mix"], ["import"], ["info"]] {
            let h = try runProcess(ganBinary, cmd + ["--help"], cwd: work)
            XCTAssertTrue(h.stdout.contains("--log-level"), "\(cmd) --help:\n\(h.stdout)")
        }
    }
}
