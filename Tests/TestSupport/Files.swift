import Foundation
import XCTest

/// The repository root (two folders above this file's folder).
public let repoRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

/// The 5,000 real digits committed under data/mnist-5k.
public var mnistFolder: String { repoRoot + "/data/mnist-5k" }

/// A fresh temporary folder, removed when the test ends.
public func makeTempDir(_ test: XCTestCase) throws -> String {
    let dir = NSTemporaryDirectory() + "ringgan-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}
