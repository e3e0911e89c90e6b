import Foundation
import TestSupport
import XCTest

extension InteropSupport {
    /// What the real TensorBoard reader (EventAccumulator) sees in an event file or folder.
    static func readEvents(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> TensorBoardRead {
        try require(["tensorboard"], file: file, line: line)
        return TensorBoardRead(try script("read_events.py", [path], cwd: NSTemporaryDirectory(), file: file, line: line))
    }
}

/// The JSON of tools/interop/read_events.py.
struct TensorBoardRead {
    let json: [String: Any]
    init(_ json: [String: Any]) { self.json = json }

    var scalarTags: [String] { ((json["tags"] as? [String: Any])?["scalars"] as? [String]) ?? [] }
    var imageTags: [String] { ((json["tags"] as? [String: Any])?["images"] as? [String]) ?? [] }

    /// (step, value) pairs of a scalar tag.
    func scalars(_ tag: String) -> [(step: Int, value: Double)] {
        guard let rows = (json["scalars"] as? [String: Any])?[tag] as? [[Any]] else { return [] }
        return rows.map { (($0[0] as? NSNumber)?.intValue ?? -1, ($0[1] as? NSNumber)?.doubleValue ?? .nan) }
    }

    func images(_ tag: String) -> [(step: Int, width: Int, height: Int, pngOK: Bool)] {
        guard let rows = (json["images"] as? [String: Any])?[tag] as? [[String: Any]] else { return [] }
        return rows.map { (($0["step"] as? NSNumber)?.intValue ?? -1, ($0["width"] as? NSNumber)?.intValue ?? -1,
                           ($0["height"] as? NSNumber)?.intValue ?? -1, ($0["png_magic_ok"] as? Bool) ?? false) }
    }
}
