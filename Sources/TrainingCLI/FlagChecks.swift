import ArgumentParser

/// The range checks of the three executables' flags, one idiom for all: each command's
/// `validate()` calls these, and a value out of range is a `ValidationError` naming the flag, the
/// value and what is accepted (ArgumentParser prints it with the usage and exits 64).
public enum FlagCheck {
    /// The most engine threads `--threads` / `--worker-threads` take.
    public static let threads = 1...1024
    /// The longest wait a timeout flag takes: a week, in seconds.
    public static let maxSeconds = 7.0 * 24 * 3600

    /// `value` of `flag` (an integer) must lie in `range`.
    public static func range<T: BinaryInteger>(_ flag: String, _ value: T?, _ range: ClosedRange<T>, _ note: String = "") throws {
        guard let value, !range.contains(value) else { return }
        throw ValidationError("\(flag) must be in \(range.lowerBound)...\(range.upperBound)\(note.isEmpty ? "" : " (\(note))"), got \(value)")
    }

    /// `value` of `flag` must be at least `minimum`.
    public static func atLeast<T: BinaryInteger>(_ flag: String, _ value: T?, _ minimum: T, _ note: String = "") throws {
        guard let value, value < minimum else { return }
        throw ValidationError("\(flag) must be \(minimum) or more\(note.isEmpty ? "" : " (\(note))"), got \(value)")
    }

    /// `value` of `flag` (a number) must be finite and in `range`.
    public static func range<T: BinaryFloatingPoint>(_ flag: String, _ value: T?, _ range: ClosedRange<T>, _ note: String = "") throws {
        guard let value, !(value.isFinite && range.contains(value)) else { return }
        throw ValidationError("\(flag) must be a number in \(range.lowerBound)...\(range.upperBound)\(note.isEmpty ? "" : " (\(note))"), got \(value)")
    }

    /// `value` of `flag` must be a finite number, 0 or more.
    public static func nonNegative<T: BinaryFloatingPoint>(_ flag: String, _ value: T?, _ what: String = "") throws {
        guard let value, !(value.isFinite && value >= 0) else { return }
        throw ValidationError("\(flag) must be a finite number, 0 or more\(what.isEmpty ? "" : " (\(what))"), got \(value)")
    }

    /// `value` of `flag` must be one of `names`.
    public static func oneOf(_ flag: String, _ value: String?, _ names: [String]) throws {
        guard let value, !names.contains(value) else { return }
        throw ValidationError("unknown \(flag) '\(value)' (one of \(names.joined(separator: ", ")))")
    }
}
