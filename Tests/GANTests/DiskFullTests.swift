import Foundation
import TestSupport
import XCTest
@testable import GAN
@testable import Telemetry

/// A disk that fills while a run appends its metrics and TensorBoard events: a reported, bounded
/// loss of telemetry, never a crash (Foundation's FileHandle.write used to trap); a checkpoint
/// that cannot be written is a clear error and the previous one stays loadable.
final class DiskFullTests: XCTestCase {
    /// metrics.jsonl is /dev/full: every line fails with ENOSPC, training goes on and counts them.
    func testMetricsOnAFullDevice() throws {
        let dir = try makeTempDir(self)
        try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/run/metrics.jsonl", withDestinationPath: "/dev/full")
        var c = smallConfig(.mlp, .bce)
        c.steps = 6
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
        let s = try TrainingSession(trainer: trainer, folder: RunFolder(path: dir + "/run"), sampleEvery: 0, checkpointEvery: 3)
        try s.run { _ in }
        XCTAssertEqual(trainer.step, 6)
        XCTAssertEqual(s.droppedMetricLines, 6)
        XCTAssertNoThrow(try Checkpoint.read(path: dir + "/run/checkpoints/step_00000006.rgan"))
    }

    /// A small tmpfs (root only) filled up: TensorBoard events are dropped and counted, the
    /// file is cut back to whole records (readable to its end) and writing resumes once there is
    /// room; a checkpoint that does not fit fails the run with ENOSPC named, the last one intact.
    func testTensorBoardAndCheckpointsOnAFullTmpfs() throws {
        let dir = try makeTempDir(self)
        let mnt = dir + "/small"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard getuid() == 0, runMount(["-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt]) else { throw XCTSkip("needs root to mount a small tmpfs") }
        defer { _ = runMount(["-u", mnt]) }
        let filler = mnt + "/filler"

        // Events: fill the disk, then write.
        let w = try EventWriter(directory: mnt, flushEvery: 0)
        fill(filler)
        for i in 0..<50 { w.scalars((0..<40).map { ("tag/\($0)", Float(i)) }, step: i) }
        XCTAssertNotNil(w.writeError)
        XCTAssertGreaterThan(w.droppedEvents, 0)
        try FileManager.default.removeItem(atPath: filler)
        w.scalars([("after", 1)], step: 99)
        XCTAssertNil(w.writeError, "writes succeed again with room")
        w.close()
        XCTAssertTrue(wholeRecords(w.path), "the event file holds only whole records")

        // A run whose next checkpoint does not fit.
        var c = smallConfig(.dcgan, .bce)
        c.steps = 4
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(48))
        let s = try TrainingSession(trainer: trainer, folder: RunFolder(path: mnt + "/run"), sampleEvery: 0, checkpointEvery: 2)
        var filled = false
        XCTAssertThrowsError(try s.run { _ in
            if trainer.step == 3 && !filled { self.fill(filler); filled = true }
        }) { e in XCTAssertTrue("\(e)".contains("No space left"), "\(e)") }
        XCTAssertNoThrow(try Checkpoint.read(path: mnt + "/run/checkpoints/step_00000002.rgan"))
    }

    func runMount(_ args: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args.first == "-u" ? "/bin/umount" : "/bin/mount")
        p.arguments = args.first == "-u" ? [args[1]] : args
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Writes zeros until the file system is full.
    func fill(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        defer { close(fd) }
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, 4096) }) > 0 {}
        var one: UInt8 = 0
        while write(fd, &one, 1) > 0 {}
    }

    /// Whether the TFRecord file is a sequence of whole records (u64 length, u32 crc, data, u32 crc).
    func wholeRecords(_ path: String) -> Bool {
        guard let d = FileManager.default.contents(atPath: path) else { return false }
        let b = [UInt8](d)
        var at = 0
        while at < b.count {
            guard at + 12 <= b.count else { return false }
            var n = 0
            for i in 0..<8 { n |= Int(b[at + i]) << (8 * i) }
            at += 12 + n + 4
        }
        return at == b.count
    }
}
