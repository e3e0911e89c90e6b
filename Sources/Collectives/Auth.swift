import Crypto
import Foundation

/// Shared-token authentication: the listener sends a random 32-byte challenge, the connecting
/// side answers with HMAC-SHA256(token, challenge || context), where the context binds the
/// answer to what it claims (its rank, its role). The token itself never crosses the wire.
public struct Authenticator: @unchecked Sendable {
    let key: SymmetricKey

    public init(token: String) {
        key = SymmetricKey(data: SHA256.hash(data: Data(token.utf8)))
    }

    public static func challenge() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    public func answer(_ challenge: [UInt8], context: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data(challenge + Array(context.utf8)), using: key))
    }

    public func verify(_ mac: [UInt8], challenge: [UInt8], context: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(challenge + Array(context.utf8)), using: key)
    }

    /// The token from a file (trimmed), else from `RINGGAN_TOKEN`, else nil.
    public static func loadToken(file: String?) throws -> String? {
        if let f = file {
            guard let t = try? String(contentsOfFile: f, encoding: .utf8) else { throw NetError(f, "cannot read the token file") }
            let s = t.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !s.isEmpty else { throw NetError(f, "the token file is empty") }
            return s
        }
        return ProcessInfo.processInfo.environment["RINGGAN_TOKEN"]
    }
}
