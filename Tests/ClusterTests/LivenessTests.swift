import Foundation
import TestSupport
import XCTest

/// A coordinator that hangs rather than dies: `--heartbeat-file` is touched by its own loop about
/// every second and goes stale when the loop stops; `cluster/local.sh` kills and restarts a
/// coordinator whose file is older than `--stale-after`.
extension ClusterTests {
    /// The file's modification time, with its fraction of a second.
    func modified(_ path: String) -> Double? {
        var st = stat()
        guard stat(work + "/" + path, &st) == 0 else { return nil }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    func testHeartbeatFileIsTouchedByTheLoopAndGoesStaleWhileItIsStopped() throws {
        let coord = try launch("gan-coordinator", ["--workers", "2", "--spawn", "--port", "0", "--heartbeat-file", "hb"]
                               + trainArgs(steps: 2000, name: "hb"), log: "coord.log")
        waitForFile("runs/hb/samples/step_00000005.png")
        XCTAssertTrue(coord.isRunning, text("coord.log"))
        XCTAssertEqual(text("hb"), "\(coord.processIdentifier)\n", "the coordinator's pid on the first line")
        // Training: touched about every second.
        guard let m1 = modified("hb") else { return XCTFail("no heartbeat file: " + text("coord.log")) }
        usleep(2_200_000)
        guard let m2 = modified("hb") else { return XCTFail("the heartbeat file went away") }
        XCTAssertGreaterThan(m2, m1, "not touched in 2.2 s of training")
        // Stopped (as a hung loop): the file goes stale.
        kill(coord.processIdentifier, SIGSTOP)
        usleep(300_000)
        let frozen = modified("hb") ?? 0
        usleep(2_500_000)
        XCTAssertEqual(modified("hb"), frozen, "touched while the coordinator was stopped")
        XCTAssertGreaterThan(Date().timeIntervalSince1970 - frozen, 2.5)
        // Going again: fresh again; then the run is ended.
        kill(coord.processIdentifier, SIGCONT)
        usleep(2_000_000)
        XCTAssertGreaterThan(modified("hb") ?? 0, frozen, "not touched again after SIGCONT")
        XCTAssertLessThan(Date().timeIntervalSince1970 - (modified("hb") ?? 0), 3, "beaten about every second again")
        kill(coord.processIdentifier, SIGINT)
        XCTAssertEqual(wait(coord, within: 120), 130, text("coord.log"))
        // An empty path is a usage error; a folder cannot be one (exit 2, naming the flag).
        let empty = try launch("gan-coordinator", ["--workers", "1", "--port", "0", "--heartbeat-file", "", "--token-file", "token"]
                               + trainArgs(steps: 2, name: "hb-empty"), log: "empty.log")
        XCTAssertEqual(wait(empty, within: 30), 64, text("empty.log"))
        try FileManager.default.createDirectory(atPath: work + "/adir", withIntermediateDirectories: true)
        let folder = try launch("gan-coordinator", ["--workers", "1", "--port", "0", "--heartbeat-file", "adir", "--token-file", "token"]
                                + trainArgs(steps: 2, name: "hb-dir"), log: "dir.log")
        XCTAssertEqual(wait(folder, within: 30), 2, text("dir.log"))
        XCTAssertTrue(text("dir.log").contains("--heartbeat-file adir: it is a folder"), text("dir.log"))
    }

    /// local.sh's liveness check, with stand-ins for the programs: a coordinator that touches its
    /// heartbeat file once and then hangs is killed once the file is older than --stale-after
    /// and restarted with --resume auto; the restarted one ends the run.
    func testLocalScriptKillsAndRestartsAHungCoordinator() throws {
        let bin = work + "/fakebin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let coordinator = """
        #!/bin/sh
        # A stand-in gan-coordinator: the first one touches its heartbeat file, then hangs.
        hb=""; prev=""
        for a in "$@"; do [ "$prev" = --heartbeat-file ] && hb="$a"; prev="$a"; done
        echo start >> "$hb.starts"
        n=$(wc -l < "$hb.starts")
        echo "fake coordinator, start $n: $*"
        echo $$ > "$hb"
        [ "$n" -ge 2 ] && exit 0
        sleep 1; touch "$hb"
        exec sleep 600

        """
        try coordinator.write(toFile: bin + "/gan-coordinator", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexec sleep 2\n".write(toFile: bin + "/gan-worker", atomically: true, encoding: .utf8)
        for f in ["gan-coordinator", "gan-worker"] { chmod(bin + "/" + f, 0o755) }
        let t0 = Date()
        let script = try launch("/bin/bash", [repoRoot + "/cluster/local.sh", "-n", "1", "--bin", bin, "--name", "hung", "--port", "\(port())",
                                              "--restarts", "1", "--stale-after", "2", "--", "--runs-dir", work + "/runs"], log: "local.log")
        XCTAssertEqual(wait(script, within: 60), 0, text("local.log"))
        let log = text("runs/hung/logs/coordinator.log")
        XCTAssertTrue(log.contains("local.sh: the coordinator (pid "), log)
        XCTAssertTrue(log.contains(" is hung: its heartbeat \(work)/runs/hung/logs/coordinator.heartbeat was last touched "), log)
        XCTAssertTrue(log.contains("s ago (--stale-after 2); killing it"), log)
        XCTAssertTrue(log.contains("the coordinator was killed by signal 9 (KILL); restarting it with --resume auto (restart 1 of 1)"), log)
        XCTAssertTrue(log.contains("fake coordinator, start 2: ") && log.contains("--resume auto"), log)
        XCTAssertTrue(text("local.log").contains("local.sh: done. (the coordinator was restarted 1 time(s))"), text("local.log"))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30, text("local.log"))
    }
}
