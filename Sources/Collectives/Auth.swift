import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Shared-token authentication, both ways, and the per-connection session keys that
/// authenticate every frame after the handshake (see `Handshake` for the exchange).
///
/// - The token is hashed once into the long-term key K = SHA-256(token); the token itself never
///   crosses the wire.
/// - Each side proves K with HMAC-SHA256 over both sides' fresh nonces and the exact bytes of
///   what it says (the joiner's whole claim: rank, ring address and port, ...), under a label
///   naming its role, so no answer can be replayed, reflected or moved to another claim.
/// - Both sides then derive one key per direction, HKDF-SHA256(K, salt: both nonces, info: role
///   and direction), which a `FrameMAC` uses on every frame.
public struct Authenticator: @unchecked Sendable {
    let key: SymmetricKey

    /// The shortest token accepted, in bytes (UTF-8), from any source.
    public static let minTokenLength = 16

    /// Refuses an empty or short token (`source` names where it came from).
    public init(token: String, source: String = "the token") throws {
        let t = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty else { throw NetError(source, "the shared token is empty") }
        guard t.utf8.count >= Self.minTokenLength else {
            throw NetError(source, "the shared token is \(t.utf8.count) bytes; at least \(Self.minTokenLength) are required (e.g. `openssl rand -hex 32`)")
        }
        key = SymmetricKey(data: SHA256.hash(data: Data(t.utf8)))
    }

    /// 32 random bytes (a nonce).
    public static func challenge() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// HMAC-SHA256(K, label 0x00 parts...), each part prefixed by its length so that no two
    /// different lists of parts give the same input.
    public func mac(_ label: String, _ parts: [[UInt8]]) -> [UInt8] {
        var h = HMAC<SHA256>(key: key)
        h.update(data: Array(label.utf8) + [0])
        for p in parts {
            h.update(data: withUnsafeBytes(of: UInt32(p.count).littleEndian) { Array($0) })
            h.update(data: p)
        }
        return Array(h.finalize())
    }

    /// Constant-time check of `mac` against `mac(label, parts)`.
    public func verify(_ mac: [UInt8], _ label: String, _ parts: [[UInt8]]) -> Bool {
        let want = self.mac(label, parts)
        guard mac.count == want.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<want.count { diff |= mac[i] ^ want[i] }
        return diff == 0
    }

    /// The key for one direction of one connection: HKDF-SHA256 over K, salted with both nonces.
    func sessionKey(_ info: String, listenerNonce: [UInt8], joinerNonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: listenerNonce + joinerNonce, info: Array(info.utf8), outputByteCount: 32)
    }

    /// The token: from `file` when given (its permissions checked), else from `RINGGAN_TOKEN`,
    /// else nil. Whatever the source, an empty or short token is refused; a token file that
    /// its group or others may read (or write) is refused, as ssh refuses such a key file.
    public static func loadToken(file: String?, environment: [String: String]) throws -> String? {
        if let f = file {
            var st = stat()
            guard stat(f, &st) == 0 else { throw NetError(f, "cannot read the token file: \(String(cString: strerror(errno)))") }
            let mode = st.st_mode & 0o777
            guard mode & 0o077 == 0 else {
                throw NetError(f, String(format: "the token file's permissions are %04o: it must not be readable or writable by the group or others (chmod 600 %@)", mode, f))
            }
            guard let t = try? String(contentsOfFile: f, encoding: .utf8) else { throw NetError(f, "cannot read the token file") }
            let s = t.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !s.isEmpty else { throw NetError(f, "the token file is empty") }
            _ = try Authenticator(token: s, source: f)
            return s
        }
        guard let t = environment["RINGGAN_TOKEN"] else { return nil }
        _ = try Authenticator(token: t, source: "RINGGAN_TOKEN")
        return t.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Authenticates the frames of one direction of a connection after the handshake: each frame
/// carries a 16-byte tag over its sequence number, its 24-byte header and its payload, under a
/// key only the two ends know. A changed, dropped, replayed, reordered or reflected frame fails.
///
/// The tag is AES-GCM's over (nonce: direction's sequence number; authenticated data: the
/// payload; plaintext: the header), of which only the tag is sent: GHASH runs at several GB/s
/// on the carry-less multiply instruction, where HMAC-SHA256 ran at 1.7 GB/s, slower than the
/// ring's loopback bandwidth (the measured cost is in docs/RELIABILITY.md). Each sequence
/// number is used once per key, as GCM requires.
public final class FrameMAC: @unchecked Sendable {
    public static let tagSize = 16
    private let key: SymmetricKey
    public private(set) var sequence: UInt64 = 0

    init(key: SymmetricKey) { self.key = key }

    /// The tag of the next frame (advances the sequence number).
    func next(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: sequence.littleEndian) { for i in 0..<8 { nonce[i] = $0[i] } }
        sequence &+= 1
        // Sealing 24 bytes with a 12-byte nonce cannot fail.
        let box = try! AES.GCM.seal(header, using: key, nonce: try! AES.GCM.Nonce(data: nonce),
                                    authenticating: payload)
        return Array(box.tag)
    }
}
