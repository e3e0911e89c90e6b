import CChecksum
import Collectives
import Foundation
import XCTest

/// Frames and their checksum: what every connection's reader checks before it believes a byte.
final class FrameTests: XCTestCase {
    func testChecksumsAgreeWithAndWithoutTheInstruction() {
        var data = [UInt8](repeating: 0, count: 5000)
        for i in data.indices { data[i] = UInt8((i * 131 + 7) & 255) }
        let check = Array("123456789".utf8)
        XCTAssertEqual(check.withUnsafeBytes { ringgan_crc32c(0, $0.baseAddress, 9) }, 0xE306_9283)   // the CRC-32C check value
        for n in stride(from: 0, through: 5000, by: 61) {
            ringgan_checksum_use_hardware(1)
            let hw = data.withUnsafeBytes { frameChecksum(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            ringgan_checksum_use_hardware(0)
            let sw = data.withUnsafeBytes { frameChecksum(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            XCTAssertEqual(hw, sw, "length \(n)")
        }
        ringgan_checksum_use_hardware(1)
        // A flipped bit anywhere changes it.
        let base = data.withUnsafeBytes { frameChecksum($0) }
        for i in [0, 1666, 1667, 3333, 4999] {
            var d = data
            d[i] ^= 0x10
            XCTAssertNotEqual(d.withUnsafeBytes { frameChecksum($0) }, base, "bit flip at \(i)")
        }
    }

    func testFramesAreChecked() throws {
        let l = try Listener(host: "127.0.0.1", port: 0)
        let a = try connect(to: "127.0.0.1", l.port, within: 5, ioTimeout: 2)
        let b = try XCTUnwrap(try l.accept(timeout: 5, ioTimeout: 2))
        // Oversized: refused before allocating.
        var h: [UInt8] = Array("RGAN".utf8) + [Frame.version, FrameType.batch.rawValue, 0, 0] + [UInt8](repeating: 0, count: 8)
        h += [0xff, 0xff, 0xff, 0x7f] + [0, 0, 0, 0]
        try h.withUnsafeBytes { try a.write([$0]) }
        XCTAssertThrowsError(try b.receive(maxPayload: 1 << 20)) { e in XCTAssertTrue("\(e)".contains("exceeds"), "\(e)") }
        // Bad magic.
        let c = try connect(to: "127.0.0.1", l.port, within: 5, ioTimeout: 2)
        let d = try XCTUnwrap(try l.accept(timeout: 5, ioTimeout: 2))
        try Array("HELLO WORLD, THIS IS NOT A FRAME".utf8).withUnsafeBytes { try c.write([$0]) }
        XCTAssertThrowsError(try d.receive()) { e in XCTAssertTrue("\(e)".contains("not a RingGAN peer"), "\(e)") }
        // Corrupt payload: checksum mismatch.
        let e1 = try connect(to: "127.0.0.1", l.port, within: 5, ioTimeout: 2)
        let e2 = try XCTUnwrap(try l.accept(timeout: 5, ioTimeout: 2))
        var f = Array("RGAN".utf8) + [Frame.version, FrameType.heartbeat.rawValue, 0, 0] + [UInt8](repeating: 0, count: 8)
        f += [3, 0, 0, 0] + [1, 2, 3, 4] + [9, 9, 9]
        try f.withUnsafeBytes { try e1.write([$0]) }
        XCTAssertThrowsError(try e2.receive()) { e in XCTAssertTrue("\(e)".contains("checksum"), "\(e)") }
        // A silent peer: the read times out instead of hanging.
        let s1 = try connect(to: "127.0.0.1", l.port, within: 5, ioTimeout: 1)
        let s2 = try XCTUnwrap(try l.accept(timeout: 5, ioTimeout: 1))
        _ = s1
        XCTAssertThrowsError(try s2.receive()) { e in XCTAssertTrue("\(e)".contains("timed out"), "\(e)") }
    }

    /// `close` from another thread ends a read waiting there at once, and the descriptor stays
    /// the connection's until it is released: a socket opened meanwhile gets another number, so
    /// a thread still inside a read or write of the closed connection cannot reach it.
    func testCloseEndsAWaitingReadAndKeepsTheDescriptorUntilReleased() throws {
        let l = try Listener(host: "127.0.0.1", port: 0)
        let a = try connect(to: "127.0.0.1", l.port, within: 5, ioTimeout: 30)
        let b = try XCTUnwrap(try l.accept(timeout: 5, ioTimeout: 30))
        final class Box: @unchecked Sendable { var error: Error?; var took = 0.0 }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Thread {
            let t0 = monotonic()
            do { _ = try b.receive() } catch { box.error = error }
            box.took = monotonic() - t0
            done.signal()
        }.start()
        usleep(200_000)
        b.close()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success, "the read went on waiting after close")
        XCTAssertNotNil(box.error)
        XCTAssertLessThan(box.took, 5)
        // Its number is still taken: new sockets get others.
        let fresh = (0..<8).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        defer { for fd in fresh { close(fd) } }
        XCTAssertFalse(fresh.contains(b.fd), "descriptor \(b.fd) was reused while its connection lives")
        // The peer sees the end.
        XCTAssertThrowsError(try a.receive()) { e in XCTAssertTrue("\(e)".contains("closed"), "\(e)") }
    }
}
