// The fuzz build's stand-in for Sources/Collectives/Auth.swift, whose HMAC comes from
// swift-crypto (too large to rebuild with the fuzzer's instrumentation here). Same interface,
// no cryptography. Never used outside fuzz/.
import Foundation

public struct Authenticator: Sendable {
    let token: [UInt8]
    public init(token: String) { self.token = Array(token.utf8) }
    public static func challenge() -> [UInt8] { [UInt8](repeating: 0x5A, count: 32) }
    /// The token's bytes then the context's (the challenge is ignored): forgeable on purpose,
    /// so that seeds (fuzz/make-seeds.py) carry admitted claims.
    public func answer(_ challenge: [UInt8], context: String) -> [UInt8] { token + Array(context.utf8) }
    public func verify(_ mac: [UInt8], challenge: [UInt8], context: String) -> Bool { mac == answer(challenge, context: context) }
}
