// libFuzzer target: wire frames and the mutual handshake (compiled into the Collectives module
// with Frame.swift, Socket.swift, Handshake.swift and a stand-in Authenticator and FrameMAC; see
// fuzz/run.sh). The input is what a joining peer sends: it is written into one end of a socket
// pair, the listener's side of the handshake runs on the other end, then frames are read until
// an error. Unless the first byte is 0xFF, the input is fixed up first so that the fuzzer gets
// past the checks it cannot guess: every frame's checksum, the claim's MAC (the first frame's
// payload is nonce | MAC | claim JSON), and the 16-byte tag that follows every frame after it
// (with the stand-in's cheap tags, in sequence).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The worker's hello (Cluster's HelloMessage, field for field).
struct FuzzHello: Codable, Sendable { var rank: Int; var ringHost: String; var ringPort: UInt16; var pid: Int32 }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1, size <= 1 << 16 else { return 0 }
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let auth = try! Authenticator(token: "fuzz-token-0123456789")
    if data[0] != 0xFF {
        var at = 0, index = 0
        let tags = FrameMAC(key: [])
        while at + Frame.headerSize <= bytes.count {
            let length = Int(bytes[at + 16]) | Int(bytes[at + 17]) << 8 | Int(bytes[at + 18]) << 16 | Int(bytes[at + 19]) << 24
            let body = at + Frame.headerSize
            let end = body + length + (index > 0 ? FrameMAC.tagSize : 0)
            guard end <= bytes.count, length <= 1 << 16 else { break }
            if index == 0 && length > 64 {
                let p = Array(bytes[body..<(body + length)])
                let mac = auth.mac("RingGAN v2 coordinator claim", [Authenticator.challenge(), Array(p[0..<32]), Array(p[64...])])
                bytes.replaceSubrange((body + 32)..<(body + 64), with: mac)
            }
            let crc = bytes[body..<(body + length)].withUnsafeBytes { frameChecksum($0) }
            withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[at + 20 + i] = $0[i] } }
            if index > 0 {
                let tag = bytes[at..<body].withUnsafeBytes { h in bytes[body..<(body + length)].withUnsafeBytes { tags.next(header: h, payload: $0) } }
                bytes.replaceSubrange((body + length)..<end, with: tag)
            }
            at = end
            index += 1
        }
    }
    var fds: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { fatalError("socketpair") }
    var sent = 0
    while sent < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fds[1], $0.baseAddress! + sent, bytes.count - sent) }
        if n <= 0 { fatalError("write to the socket pair") }
        sent += n
    }
    shutdown(fds[1], Int32(SHUT_WR))
    let conn = Connection(fd: fds[0], peer: "fuzz-peer", timeout: 5)
    conn.setHardDeadline(5, what: "the handshake")
    if case .admitted? = try? Handshake.accept(conn, claim: .hello, as: FuzzHello.self, auth: auth, role: "coordinator",
                                                wrongToken: "wrong token") {
        while (try? conn.receive(maxPayload: 1 << 16)) != nil {}
    }
    conn.close()
    Glibc.close(fds[1])
    return 0
}
