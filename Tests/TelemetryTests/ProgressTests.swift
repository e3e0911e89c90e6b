import Telemetry
import XCTest

final class ProgressTests: XCTestCase {
    func testDurations() {
        XCTAssertEqual(Progress.formatDuration(0), "0:00")
        XCTAssertEqual(Progress.formatDuration(9.9), "0:09")
        XCTAssertEqual(Progress.formatDuration(234), "3:54")
        XCTAssertEqual(Progress.formatDuration(3599), "59:59")
        XCTAssertEqual(Progress.formatDuration(3600), "1:00:00")
        XCTAssertEqual(Progress.formatDuration(3 * 3600 + 62), "3:01:02")
        XCTAssertEqual(Progress.formatDuration(nil), "--:--")
        XCTAssertEqual(Progress.formatDuration(.infinity), "--:--")
        XCTAssertEqual(Progress.formatDuration(-1), "--:--")
    }

    func testRateAndETA() {
        XCTAssertNil(Progress.rate(done: 0, elapsed: 5))
        XCTAssertNil(Progress.rate(done: 5, elapsed: 0))
        XCTAssertEqual(Progress.rate(done: 120, elapsed: 10), 12)
        XCTAssertEqual(Progress.eta(remaining: 2880, rate: 12), 240)
        XCTAssertNil(Progress.eta(remaining: 10, rate: nil))
        XCTAssertEqual(Progress.formatRate(12.34), "12.3 it/s")
        XCTAssertEqual(Progress.formatRate(1.5), "1.50 it/s")
        XCTAssertEqual(Progress.formatRate(0.049), "0.05 it/s")
        XCTAssertEqual(Progress.formatRate(123.6), "124 it/s")
        XCTAssertEqual(Progress.formatRate(nil), "? it/s")
    }

    func testPlainLine() {
        let line = Progress.plainLine(label: "train", done: 120, total: 3000, rate: 12.3, eta: 234,
                                      metrics: [("d_loss", "0.693"), ("g_loss", "2.10")])
        XCTAssertEqual(line, "train 120/3000 (4%) 12.3 it/s eta 3:54 d_loss 0.693 g_loss 2.10")
        XCTAssertEqual(Progress.plainLine(label: "x", done: 0, total: 10, rate: nil, eta: nil, metrics: []),
                       "x 0/10 (0%) ? it/s eta --:--")
    }

    func testTerminalLineAndBar() {
        XCTAssertEqual(Progress.bar(0.5), String(repeating: "█", count: 12) + String(repeating: "░", count: 12))
        XCTAssertEqual(Progress.bar(2).count, 24)
        XCTAssertEqual(Progress.bar(.nan), String(repeating: "░", count: 24))
        let line = Progress.terminalLine(label: "train", done: 750, total: 3000, rate: 12.5, elapsed: 60, eta: 180,
                                         metrics: [("d_loss", "0.693")])
        XCTAssertEqual(line, "train |██████░░░░░░░░░░░░░░░░░░| 750/3000 12.5 it/s 1:00<3:00 d_loss 0.693")
    }

    func testThrottling() {
        XCTAssertTrue(Progress.shouldShow(done: 1, total: 100, now: 0, lastShown: nil, every: 5))
        XCTAssertFalse(Progress.shouldShow(done: 2, total: 100, now: 4.9, lastShown: 0, every: 5))
        XCTAssertTrue(Progress.shouldShow(done: 3, total: 100, now: 5, lastShown: 0, every: 5))
        XCTAssertTrue(Progress.shouldShow(done: 100, total: 100, now: 0.1, lastShown: 0, every: 5))
    }

    final class Fake { var now = 0.0; var lines: [String] = [] }

    func testPlainOutputFirstEveryAndLast() {
        let f = Fake()
        let p = Progress(total: 100, label: "train", every: 5, output: { f.lines.append($0) },
                         isTerminal: false, clock: { f.now })
        for step in 1...100 {
            f.now = Double(step) * 0.5            // 2 it/s
            p.update(step, ["loss": "\(step)"])
        }
        p.finish()
        // First (step 1), then every 5 s (10 steps), and the last (100) once.
        XCTAssertEqual(f.lines.count, 11, f.lines.joined())
        XCTAssertEqual(f.lines.first, "train 1/100 (1%) 2.00 it/s eta 0:49 loss 1\n")
        XCTAssertEqual(f.lines[1], "train 11/100 (11%) 2.00 it/s eta 0:44 loss 11\n")
        XCTAssertEqual(f.lines.last, "train 100/100 (100%) 2.00 it/s eta 0:00 loss 100\n")
    }

    func testFinishShowsAnUnshownLastState() {
        let f = Fake()
        let p = Progress(total: 100, label: "t", output: { f.lines.append($0) }, isTerminal: false, clock: { f.now })
        f.now = 1; p.update(1)
        f.now = 2; p.update(2, ["a": "b"])
        p.finish()
        p.finish()
        XCTAssertEqual(f.lines, ["t 1/100 (1%) 1.00 it/s eta 1:39\n", "t 2/100 (2%) 1.00 it/s eta 1:38 a b\n"])
    }

    func testTerminalRedrawsOneLine() {
        let f = Fake()
        let p = Progress(total: 10, label: "t", output: { f.lines.append($0) }, isTerminal: true, clock: { f.now })
        for step in 1...10 { f.now = Double(step); p.update(step) }
        p.finish()
        XCTAssertEqual(f.lines.last, "\n")
        XCTAssertTrue(f.lines.dropLast().allSatisfy { $0.hasPrefix("\r") && !$0.contains("\n") })
        XCTAssertTrue(f.lines[f.lines.count - 2].contains("10/10"))
    }

    /// On a terminal the line never wraps: at 150 columns (the coordinator's ~150-character line)
    /// and at 80 and 40 it fits in width - 1 by shortening the bar, then dropping it, then the
    /// metrics from the end; a wide terminal shows it whole. (Before, it was printed whole at any
    /// width and wrapped, so every redraw left a line behind.)
    func testTerminalLineFitsTheWidth() {
        let metrics = [("d_loss", "0.6931"), ("g_loss", "2.1000"), ("D(x)", "0.5012"), ("D(G(z))", "0.4890"),
                       ("gp", "0.0123"), ("ring_ms", "123.4"), ("wait_ms", "12.3"), ("bytes", "1.23M"), ("workers", "4/4")]
        let whole = Progress.terminalLine(label: "train", done: 750, total: 3000, rate: 12.5, elapsed: 60, eta: 180, metrics: metrics)
        XCTAssertGreaterThan(whole.count, 150)
        for width in [200, 150, 80, 60, 40, 20] {
            let line = Progress.fitted(label: "train", done: 750, total: 3000, rate: 12.5, elapsed: 60, eta: 180, metrics: metrics,
                                       width: width)
            XCTAssertLessThanOrEqual(line.count, width - 1, "\(width): \(line)")
            XCTAssertTrue(line.hasPrefix("train"), line)
            if width >= 60 { XCTAssertTrue(line.contains("750/3000"), "\(width): \(line)") }
        }
        XCTAssertEqual(Progress.fitted(label: "train", done: 750, total: 3000, rate: 12.5, elapsed: 60, eta: 180, metrics: metrics,
                                       width: whole.count + 1), whole)
        let at80 = Progress.fitted(label: "train", done: 750, total: 3000, rate: 12.5, elapsed: 60, eta: 180, metrics: metrics, width: 80)
        XCTAssertTrue(at80.contains("d_loss 0.6931"), at80)
        XCTAssertFalse(at80.contains("workers"), at80)
        // Through the class, with the width it is given.
        let f = Fake()
        let p = Progress(total: 3000, label: "train", output: { f.lines.append($0) }, isTerminal: true, clock: { f.now }, columns: { 60 })
        f.now = 1; p.update(10, metrics)
        let drawn = f.lines[0].replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\u{1B}[K", with: "")
        XCTAssertLessThanOrEqual(drawn.count, 59, drawn)
    }

    /// With a time limit the ETA is the time left when that comes first: `--time-limit 4s` of a
    /// 32,000-step preset says 0:04, not 5:35.
    func testETAHonoursTheTimeLimit() {
        let f = Fake()
        let p = Progress(total: 32_000, label: "train", output: { f.lines.append($0) }, isTerminal: false, clock: { f.now })
        p.timeLeft = { 4 - f.now }
        f.now = 1; p.update(100)
        XCTAssertTrue(f.lines[0].contains("eta 0:03"), f.lines[0])
        let q = Progress(total: 200, label: "train", output: { f.lines.append($0) }, isTerminal: false, clock: { f.now })
        q.timeLeft = { 1_000 }
        f.now = 2; q.update(100)   // the steps end first: 100 done in its first second, 100 left
        XCTAssertTrue(f.lines.last!.contains("eta 0:01"), f.lines.last!)
    }
}
