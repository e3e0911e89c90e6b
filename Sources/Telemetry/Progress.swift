#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import Synchronization

/// Progress of a loop of `total` steps.
///
/// On a terminal: one line redrawn in place (`\r`), at most 10 times a second:
/// `label |████████░░░░| 120/3000 12.3 it/s 0:10<3:54 d_loss 0.693 g_loss 2.1`.
/// Otherwise (a log file, a pipe): plain lines, the first, then at most one every `every`
/// seconds, and the last: `label 120/3000 (4%) 12.3 it/s eta 3:54 d_loss 0.693 g_loss 2.1`.
/// On a terminal the line is fitted to its width (`fitted`): a shorter bar, then no bar, then
/// fewer metrics, so that it never wraps; with a time limit (`timeLeft`) the ETA is the sooner of
/// the steps' and the limit's. The formatting is done by the static pure functions below.
public final class Progress {
    public let total: Int
    public let label: String
    public let every: Double
    public let isTerminal: Bool
    private let output: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private let initial: Int
    private var done: Int
    private var metrics: [(String, String)] = []
    private var lastShown: Double?
    private var shownDone: Int?
    private var finished = false
    private let columns: () -> Int?
    /// Seconds until the run's time limit ends it (nil: no limit): the ETA is never later.
    public var timeLeft: (() -> Double?)?

    /// - initial: steps already done when this starts (a resumed run); the rate counts from it.
    /// - output: receives whole lines (with their `\n` or `\r`); defaults to standard output.
    /// - clock: seconds on a monotonic clock (for tests).
    /// - columns: the terminal's width (default: standard output's, else $COLUMNS, else 80).
    public init(total: Int, label: String, every: Double = 5, initial: Int = 0,
                output: @escaping (String) -> Void = Progress.writeToStandardOutput,
                isTerminal: Bool = isatty(1) != 0,
                clock: @escaping () -> Double = Progress.monotonicSeconds,
                columns: @escaping () -> Int? = { Progress.terminalColumns(fd: 1) }) {
        self.columns = columns
        self.total = max(total, 0)
        self.label = label
        self.every = every
        self.isTerminal = isTerminal
        self.output = output
        self.clock = clock
        self.initial = initial
        self.done = initial
        start = clock()
    }

    public func update(_ done: Int, _ metrics: KeyValuePairs<String, String> = [:]) {
        update(done, metrics.map { ($0.key, $0.value) })
    }

    public func update(_ done: Int, _ metrics: [(String, String)]) {
        guard !finished else { return }
        self.done = done
        self.metrics = metrics
        let now = clock()
        let interval = isTerminal ? 0.1 : every
        guard Progress.shouldShow(done: done, total: total, now: now, lastShown: lastShown, every: interval) else { return }
        show(now: now)
    }

    /// Prints a line of its own (on a terminal, above the progress line, which is redrawn).
    public func log(_ line: String) {
        if isTerminal && lastShown != nil {
            output("\r\u{1B}[K" + line + "\n")
            if !finished { show(now: clock()) }
        } else {
            output(line + "\n")
        }
    }

    /// Shows the final state (if not shown yet) and ends the line. Later updates are ignored.
    public func finish() {
        guard !finished else { return }
        if isTerminal {
            show(now: clock())
            output("\n")
        } else if shownDone != done {
            show(now: clock())
        }
        finished = true
    }

    private func show(now: Double) {
        let elapsed = now - start
        let rate = Progress.rate(done: done - initial, elapsed: elapsed)
        var eta = Progress.eta(remaining: total - done, rate: rate)
        if let left = timeLeft?() { eta = min(eta ?? .infinity, max(left, 0)) }
        if isTerminal {
            output("\r" + Progress.fitted(label: label, done: done, total: total, rate: rate, elapsed: elapsed, eta: eta,
                                          metrics: metrics, width: columns() ?? 80) + "\u{1B}[K")
        } else {
            output(Progress.plainLine(label: label, done: done, total: total, rate: rate, eta: eta,
                                      metrics: metrics) + "\n")
        }
        lastShown = now
        shownDone = done
    }

    // MARK: pure formatting

    /// The first update, the last step, or `every` seconds since the last line.
    public static func shouldShow(done: Int, total: Int, now: Double, lastShown: Double?, every: Double) -> Bool {
        guard let last = lastShown else { return true }
        return done >= total || now - last >= every
    }

    /// Steps per second, nil before anything is known.
    public static func rate(done: Int, elapsed: Double) -> Double? {
        done > 0 && elapsed > 0 ? Double(done) / elapsed : nil
    }

    /// Seconds left at `rate`, nil when unknown.
    public static func eta(remaining: Int, rate: Double?) -> Double? {
        guard let rate, rate > 0 else { return nil }
        return Double(max(remaining, 0)) / rate
    }

    /// `m:ss` under an hour, `h:mm:ss` from an hour on, `--:--` when unknown.
    public static func formatDuration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0, seconds < 1e9 else { return "--:--" }
        let s = Int(seconds)
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return h > 0 ? "\(h):\(two(m)):\(two(sec))" : "\(m):\(two(sec))"
    }

    /// `12.3 it/s` (3 significant digits, at least 2 decimals below 10), `? it/s` when unknown.
    public static func formatRate(_ rate: Double?) -> String {
        guard let r = rate, r.isFinite else { return "? it/s" }
        let digits = r >= 100 ? 0 : r >= 10 ? 1 : 2
        return fixed(r, digits) + " it/s"
    }

    /// `key value key value`.
    public static func formatMetrics(_ metrics: [(String, String)]) -> String {
        metrics.map { "\($0.0) \($0.1)" }.joined(separator: " ")
    }

    /// `label 120/3000 (4%) 12.3 it/s eta 3:54 d_loss 0.693`
    public static func plainLine(label: String, done: Int, total: Int, rate: Double?, eta: Double?,
                                 metrics: [(String, String)]) -> String {
        let pct = total > 0 ? min(100, max(0, done * 100 / total)) : 100
        var s = "\(label) \(done)/\(total) (\(pct)%) \(formatRate(rate)) eta \(formatDuration(eta))"
        if !metrics.isEmpty { s += " " + formatMetrics(metrics) }
        return s
    }

    /// `terminalLine` within `width` columns (less one, so that the cursor does not wrap): the
    /// bar shrinks from 24 to 8 characters, then goes; then metrics are dropped from the end; a
    /// line still too long is cut.
    public static func fitted(label: String, done: Int, total: Int, rate: Double?, elapsed: Double, eta: Double?,
                              metrics: [(String, String)], width: Int) -> String {
        let room = max(width - 1, 1)
        var shown = metrics
        while true {
            let full = terminalLine(label: label, done: done, total: total, rate: rate, elapsed: elapsed, eta: eta, metrics: shown)
            if full.count <= room { return full }
            let rest = full.count - 24
            if room - rest >= 8 {
                return terminalLine(label: label, done: done, total: total, rate: rate, elapsed: elapsed, eta: eta,
                                    metrics: shown, barWidth: room - rest)
            }
            let bare = terminalLine(label: label, done: done, total: total, rate: rate, elapsed: elapsed, eta: eta,
                                    metrics: shown, barWidth: 0)
            if bare.count <= room { return bare }
            if shown.isEmpty { return String(bare.prefix(room)) }
            shown.removeLast()
        }
    }

    /// `label |████████░░░░░░░░░░░░░░░░| 120/3000 12.3 it/s 0:10<3:54 d_loss 0.693` (without the
    /// bar when `barWidth` is 0).
    public static func terminalLine(label: String, done: Int, total: Int, rate: Double?, elapsed: Double,
                                    eta: Double?, metrics: [(String, String)], barWidth: Int = 24) -> String {
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        var s = (barWidth > 0 ? "\(label) |\(bar(fraction, width: barWidth))| " : "\(label) ") + "\(done)/\(total) \(formatRate(rate)) "
            + "\(formatDuration(elapsed))<\(formatDuration(eta))"
        if !metrics.isEmpty { s += " " + formatMetrics(metrics) }
        return s
    }

    /// A bar of `width` characters, `fraction` of them full.
    public static func bar(_ fraction: Double, width: Int = 24) -> String {
        let f = fraction.isFinite ? min(max(fraction, 0), 1) : 0
        let full = Int(f * Double(width))
        return String(repeating: "█", count: full) + String(repeating: "░", count: width - full)
    }

    static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int((v * scale).rounded())
        if digits == 0 { return "\(n)" }
        let whole = n / Int(scale), frac = String(n % Int(scale))
        return "\(whole)." + String(repeating: "0", count: digits - frac.count) + frac
    }

    // MARK: defaults

    /// Writes to file descriptor 1, after flushing stdio's buffers so that output stays in order.
    public static func writeToStandardOutput(_ s: String) {
        fflush(nil)
        var bytes = Array(s.utf8)
        var done = 0
        bytes.withUnsafeMutableBytes { raw in
            while done < raw.count {
                let n = write(1, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }

    /// The width of the terminal on `fd` (TIOCGWINSZ), else `fallbackColumns`, else nil.
    public static func terminalColumns(fd: Int32) -> Int? {
        var ws = winsize()
        if ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 { return Int(ws.ws_col) }
        let n = fallback.load(ordering: .relaxed)
        return n > 0 ? n : nil
    }

    /// The width used when the output is not a terminal: the executables set it from $COLUMNS
    /// (`ProcessEnvironment`); nil (0) when unset.
    public static var fallbackColumns: Int? {
        get { let n = fallback.load(ordering: .relaxed); return n > 0 ? n : nil }
        set { fallback.store(max(0, newValue ?? 0), ordering: .relaxed) }
    }
    private static let fallback = Atomic<Int>(0)

    /// Seconds on the monotonic clock (`rg_monotonic_seconds`, the one every module uses).
    public static func monotonicSeconds() -> Double { rg_monotonic_seconds() }
}
