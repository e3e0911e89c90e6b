import Foundation

/// The token handshake, the same on every RingGAN connection (a worker joining the coordinator,
/// a rank joining its right neighbour):
///
///     listener -> joiner   challenge   32 random bytes
///     joiner -> listener   claim       JSON: who it says it is, and HMAC(token, challenge || context)
///     listener -> joiner   welcome     (empty), or reject with the reason
///
/// The context names what the claim says (its rank, its role), so an answer cannot be replayed
/// for another claim; the token never crosses the wire.
public protocol HandshakeClaim: Codable {
    /// HMAC-SHA256(token, challenge || context) (`Authenticator.answer`).
    var mac: [UInt8] { get }
}

/// How the listening side's handshake ended.
public enum HandshakeOutcome<Claim> {
    /// The peer proved the token and its claim was admitted; `welcome` has gone out.
    case admitted(Claim)
    /// The peer was told why in a `reject` frame and its connection closed.
    case refused(String)
}

public enum Handshake {
    /// The listening side. The claim's MAC is checked against `context(claim)`; a wrong one is
    /// refused with `wrongToken`, and then `admit` may refuse the claim itself (nil admits it).
    /// Malformed or broken exchanges throw.
    public static func accept<Claim: HandshakeClaim>(_ c: Connection, claim type: FrameType, as _: Claim.Type, auth: Authenticator,
                                                     maxPayload: Int = 4096, context: (Claim) -> String, wrongToken: String,
                                                     admit: (Claim) -> String? = { _ in nil }) throws -> HandshakeOutcome<Claim> {
        let nonce = Authenticator.challenge()
        try c.send(.challenge, bytes: nonce)
        let claim = try c.receive(type, maxPayload: maxPayload).decode(Claim.self, from: c.peer)
        let refusal = auth.verify(claim.mac, challenge: nonce, context: context(claim)) ? admit(claim) : wrongToken
        if let why = refusal {
            try? c.send(.reject, bytes: Array(why.utf8))
            c.close()
            return .refused(why)
        }
        try c.send(.welcome, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        return .admitted(claim)
    }

    /// The joining side: answers the challenge with the claim `makeClaim(mac)` makes for
    /// `context`, then waits for the welcome (a `reject` throws with the listener's reason).
    public static func join<Claim: HandshakeClaim>(_ c: Connection, claim type: FrameType, auth: Authenticator, context: String,
                                                   _ makeClaim: (_ mac: [UInt8]) -> Claim) throws {
        let challenge = try c.receive(.challenge, maxPayload: 64)
        try c.send(type, json: makeClaim(auth.answer(challenge.payload, context: context)))
        _ = try c.receive(.welcome, maxPayload: 1 << 16)
    }
}
