// The fuzz build's stand-in for Sources/Collectives/Auth.swift, whose HMAC, HKDF and AES-GCM come
// from swift-crypto (too large to rebuild with the fuzzer's instrumentation here). Same
// interface, no cryptography: the MACs and frame tags are a cheap hash that the fuzz target
// recomputes, so that inputs carry admitted claims and correctly tagged frames after them
// (the real MACs are tested in CollectivesTests.HostilePeerTests). Never used outside fuzz/.
import Foundation

/// FNV-1a over the bytes, stretched to `n` bytes.
func stubHash(_ b: [UInt8], _ n: Int) -> [UInt8] {
    var h: UInt64 = 0xcbf29ce484222325
    for x in b { h = (h ^ UInt64(x)) &* 0x100000001b3 }
    return (0..<n).map { i in UInt8(truncatingIfNeeded: (h &* UInt64(i + 1)) >> 24) }
}

public struct Authenticator: Sendable {
    public static let minTokenLength = 16
    public init(token: String, source: String = "the token") throws {}
    public static func challenge() -> [UInt8] { [UInt8](repeating: 0x5A, count: 32) }
    public func mac(_ label: String, _ parts: [[UInt8]]) -> [UInt8] { stubHash(Array(label.utf8) + parts.flatMap { $0 }, 32) }
    public func verify(_ mac: [UInt8], _ label: String, _ parts: [[UInt8]]) -> Bool { mac == self.mac(label, parts) }
    func sessionKey(_ info: String, listenerNonce: [UInt8], joinerNonce: [UInt8]) -> [UInt8] { [] }
}

public final class FrameMAC: @unchecked Sendable {
    public static let tagSize = 16
    public private(set) var sequence: UInt64 = 0
    init(key: [UInt8]) {}
    func next(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> [UInt8] {
        let s = withUnsafeBytes(of: sequence.littleEndian) { Array($0) }
        sequence &+= 1
        return stubHash(s + Array(header) + Array(payload), FrameMAC.tagSize)
    }
}
