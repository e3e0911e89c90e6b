import ArgumentParser
import Logging
import Telemetry

/// `--log-level`, declared once for every command of the three executables.
public struct LogOptions: ParsableArguments {
    public init() {}

    @Option(help: "Log level: \(logLevelNames.joined(separator: ", ")). Log lines go to standard error.")
    public var logLevel: String = "info"

    public func validate() throws {
        guard parseLogLevel(logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(logLevel)' (one of \(logLevelNames.joined(separator: ", ")))")
        }
    }

    /// Sets up swift-log (lines tagged with `rank` when given) and returns the command's logger.
    public func bootstrap(_ label: String, rank: Int? = nil) -> Logger {
        _ = bootstrapLogging(level: parseLogLevel(logLevel) ?? .info, rank: rank)
        return Logger(label: label)
    }
}
