// Modules that import Telemetry see swift-log's `Logger` too (GAN logs through it without a
// package dependency of its own).
@_exported import Logging
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RingGAN's log lines, one per event:
///
///     2026-11-29T10:51:10.123Z info gan.train [rank 2] checkpoint written path=runs/x/step_00000500.rgan step=500
///
/// UTC time with milliseconds, level, the logger's label, `[rank N]` when the metadata has a
/// `rank`, the message, then the other metadata as `key=value` sorted by key (values with spaces,
/// quotes or `=` are quoted). Lines go to standard error by default, after standard output's
/// buffered text has been flushed so that the two stay in order when they share a file or pipe.
public struct LineLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let output: @Sendable (String) -> Void
    private let clock: @Sendable () -> Double

    /// - output: receives each whole line, with its `\n` (default: standard error).
    /// - clock: seconds since 1970 (for tests).
    public init(label: String, level: Logger.Level = .info, metadata: Logger.Metadata = [:],
                metadataProvider: Logger.MetadataProvider? = nil,
                output: @escaping @Sendable (String) -> Void = LineLogHandler.writeToStandardError,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.label = label
        logLevel = level
        self.metadata = metadata
        self.metadataProvider = metadataProvider
        self.output = output
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let p = metadataProvider { all.merge(p.get(), uniquingKeysWith: { _, new in new }) }
        if let m = event.metadata { all.merge(m, uniquingKeysWith: { _, new in new }) }
        if let e = event.error { all["error"] = .string("\(e)") }
        output(LineLogHandler.format(time: clock(), level: event.level, label: label, message: event.message.description,
                                     metadata: all) + "\n")
    }

    // MARK: pure formatting

    /// One line, without its newline.
    public static func format(time: Double, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var s = isoTime(time) + " " + level.rawValue + " " + label
        var rest = metadata
        if let r = rest.removeValue(forKey: "rank") { s += " [rank \(r)]" }
        s += " " + message.replacingOccurrences(of: "\n", with: " ")
        for k in rest.keys.sorted() { s += " \(k)=\(quote(rest[k]!.description))" }
        return s
    }

    /// `2026-11-29T10:51:10.123Z`.
    public static func isoTime(_ t: Double) -> String {
        var secs = time_t(floor(t))
        var ms = Int(((t - floor(t)) * 1000).rounded(.down))
        if ms > 999 { ms = 999 }
        var tm = tm()
        gmtime_r(&secs, &tm)
        func pad(_ v: Int32, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):"
            + "\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }

    /// A metadata value as written after `key=`: quoted (with `\"` and `\\` escaped) when it is
    /// empty or holds spaces, quotes or `=`.
    public static func quote(_ v: String) -> String {
        let needs = v.isEmpty || v.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" || $0 == "\t" }
        guard needs else { return v }
        return "\"" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    /// Writes to file descriptor 2 in one call; when standard error is a terminal, first clears
    /// the line (a progress bar may be drawn there; it is redrawn on its next update).
    public static func writeToStandardError(_ line: String) {
        fflush(nil)
        let text = (isatty(2) != 0 ? "\r\u{1B}[K" : "") + line
        var bytes = Array(text.utf8)
        var done = 0
        bytes.withUnsafeMutableBytes { raw in
            while done < raw.count {
                let n = write(2, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }
}

/// Parses a `--log-level` value (trace, debug, info, notice, warning, error, critical).
public func parseLogLevel(_ s: String) -> Logger.Level? { Logger.Level(rawValue: s.lowercased()) }

public let logLevelNames = Logger.Level.allCases.map { $0.rawValue }

private final class LoggingBootstrap: @unchecked Sendable {
    static let shared = LoggingBootstrap()
    let lock = NSLock()
    var done = false
}

/// Sets up swift-log for the process: every `Logger` writes `LineLogHandler` lines at `level` or
/// above to standard error, with `[rank N]` in each line when `rank` is given (the ranks of a
/// distributed run). The first call wins (swift-log allows one bootstrap per process); it returns
/// whether this call was it.
@discardableResult
public func bootstrapLogging(level: Logger.Level = .info, rank: Int? = nil) -> Bool {
    let b = LoggingBootstrap.shared
    b.lock.lock()
    defer { b.lock.unlock() }
    guard !b.done else { return false }
    b.done = true
    let meta: Logger.Metadata = rank.map { ["rank": .stringConvertible($0)] } ?? [:]
    LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, metadata: meta) }
    return true
}
