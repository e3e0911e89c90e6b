// libFuzzer target: wire frames and the token handshake (compiled into the Collectives module
// with Frame.swift, Socket.swift, Handshake.swift and a stand-in Authenticator; see
// fuzz/run.sh). The input is what a peer sends: it is written into one end of a socket pair,
// the listener's side of the handshake runs on the other end, then frames are read until an
// error. Unless the first byte is 0xFF, every frame's checksum is fixed up first so that the
// fuzzer reaches the claim's JSON and the frames after it.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The worker's hello (Cluster's HelloMessage, field for field).
struct FuzzHello: HandshakeClaim { var rank: Int; var ringHost: String; var ringPort: UInt16; var mac: [UInt8]; var pid: Int32 }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1, size <= 1 << 16 else { return 0 }
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] != 0xFF {
        var at = 0
        while at + Frame.headerSize <= bytes.count {
            let length = Int(bytes[at + 16]) | Int(bytes[at + 17]) << 8 | Int(bytes[at + 18]) << 16 | Int(bytes[at + 19]) << 24
            let end = at + Frame.headerSize + length
            guard end <= bytes.count else { break }
            let crc = bytes[(at + Frame.headerSize)..<end].withUnsafeBytes { frameChecksum($0) }
            withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[at + 20 + i] = $0[i] } }
            at = end
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
    let auth = Authenticator(token: "fuzz")
    if case .admitted? = try? Handshake.accept(conn, claim: .hello, as: FuzzHello.self, auth: auth, maxPayload: 4096,
                                                context: { "worker \($0.rank)" }, wrongToken: "wrong token") {
        while (try? conn.receive(maxPayload: 1 << 16)) != nil {}
    }
    conn.close()
    Glibc.close(fds[1])
    return 0
}
