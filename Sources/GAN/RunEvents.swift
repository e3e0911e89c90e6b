import Foundation
import Telemetry
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One line of a run's `events.jsonl`: what happened to the run as a whole (it started, a ring
/// formed, workers were lost, it ended and why), for scripts, tests and the fault matrix to
/// judge by instead of log wording. `gan train` writes them for its run, `gan-coordinator` for a
/// distributed one (the workers do not).
///
/// | event | fields |
/// |---|---|
/// | `started` | `step` (0, or the checkpoint's), `from` (the checkpoint resumed from) |
/// | `formed` | `step`, `from`, `workers` (the ring's size) |
/// | `lost` | `step` (the last step every rank finished), `ranks` (declared dead), `reason` |
/// | `ended` | `step`, `ending` (`completed`, `time-limit`, `stop-request`, `failed`), `reason` (a failure's), `checkpoint` (the newest) |
///
/// Every line has `event`, `step` and `time` (seconds since 1970).
public struct RunEvent: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case started, formed, lost, ended }
    public enum Ending: String, Codable, Sendable {
        case completed, timeLimit = "time-limit", stopRequest = "stop-request", failed
    }
    public var event: Kind
    public var step: Int
    public var time: Double
    public var from: String?
    public var workers: Int?
    public var ranks: [Int]?
    public var reason: String?
    public var ending: Ending?
    public var checkpoint: String?

    public init(_ event: Kind, step: Int, from: String? = nil, workers: Int? = nil, ranks: [Int]? = nil,
                ending: Ending? = nil, reason: String? = nil, checkpoint: String? = nil) {
        self.event = event; self.step = step; self.time = Date().timeIntervalSince1970
        self.from = from; self.workers = workers; self.ranks = ranks
        self.reason = reason; self.ending = ending; self.checkpoint = checkpoint
    }
}

extension RunFolder {
    /// The run's event log.
    public var eventsPath: String { path + "/events.jsonl" }

    /// Appends `event` as one line in one write (a reader never sees half a line). A failed
    /// write (a full disk) leaves the file as it was and is returned as text for the caller to
    /// log: the events are a record of the run, never a reason to stop it.
    @discardableResult
    public func record(_ event: RunEvent) -> String? {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? enc.encode(event) else { return "cannot encode the event" }
        line.append(UInt8(ascii: "\n"))
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let fd = open(eventsPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "\(eventsPath): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        return line.withUnsafeBytes { appendWhole(fd, $0) }.map { "\(eventsPath): \($0)" }
    }

    /// The events recorded so far, in order (none when there is no event log). A line that
    /// does not read as an event is an error naming the file and the line.
    public func events() throws -> [RunEvent] {
        guard let data = FileManager.default.contents(atPath: eventsPath) else { return [] }
        let dec = JSONDecoder()
        var out: [RunEvent] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            do { out.append(try dec.decode(RunEvent.self, from: Data(line))) } catch {
                throw SessionError("\(eventsPath): line \(i + 1) is not a run event: \(error)")
            }
        }
        return out
    }
}
