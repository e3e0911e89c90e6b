import Datasets
import Foundation
import TestSupport
import XCTest

/// IDX files the fuzzer (fuzz/run.sh idx) found trouble with.
final class HostileIDXTests: XCTestCase {
    /// A few hundred bytes of gzip whose IDX header declares a body of ~1 GiB: the reader
    /// reserved the whole declared body before any of it arrived (fuzz: out-of-memory, malloc
    /// of 1,073,741,856 bytes). Refused now before reserving anything: deflate cannot inflate so
    /// few bytes to that size.
    func testGzipHeaderDeclaringMoreThanTheFileCanHold() throws {
        let dir = try makeTempDir(self)
        let declared = IDX.maxBodyBytes    // labels: one dimension
        try writeBytes(gzip(be32(0x801) + be32(UInt32(declared)) + [1, 2, 3]), to: "\(dir)/bomb.gz")
        assertDataError(try IDX.readLabels(path: "\(dir)/bomb.gz"),
                        contains: ["bomb.gz", "truncated: the header declares \(declared) bytes of labels, more than"])
        // The fuzzer's own input (its first byte picks labels; the rest is the file).
        let found = try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/fuzz/corpus/idx/regress-oom-gzip-1gib-header"))
        try found.dropFirst().write(to: URL(fileURLWithPath: "\(dir)/found.gz"))
        assertDataError(try IDX.readLabels(path: "\(dir)/found.gz"), contains: ["found.gz"])
    }
}
