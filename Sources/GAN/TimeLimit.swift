import Foundation

/// A duration as `gan train --time-limit` takes it: seconds (`300`, `90.5`), or a number with a
/// unit `s`, `m` or `h` (`45s`, `5m`, `1.5h`), or units combined (`1h30m`). Nil when malformed or
/// negative.
public func parseDuration(_ text: String) -> TimeInterval? {
    let s = text.trimmingCharacters(in: .whitespaces).lowercased()
    guard !s.isEmpty else { return nil }
    if let plain = Double(s) { return plain >= 0 && plain.isFinite ? plain : nil }
    var total = 0.0, number = ""
    var seen = Set<Character>()
    for ch in s {
        if ch.isNumber || ch == "." {
            number.append(ch)
        } else if let scale = ["s": 1.0, "m": 60.0, "h": 3600.0][ch] {
            guard let v = Double(number), v.isFinite, !seen.contains(ch) else { return nil }
            seen.insert(ch)
            total += v * scale
            number = ""
        } else {
            return nil
        }
    }
    return number.isEmpty ? total : nil
}
