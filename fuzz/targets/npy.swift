// libFuzzer target: Npy.decode (compiled into the Tensors module with its sources; see fuzz/run.sh).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let t = try? Npy.decode(bytes, path: "fuzz.npy") else { return 0 }
    // The allocation bound: a decoded array never holds more float32s than the file has bytes / 4.
    if t.count * 4 > size { fatalError("npy: \(t.count) values decoded from a \(size)-byte file") }
    // What decodes re-encodes to a file that decodes to the same values.
    let back = try! Npy.decode(Npy.encode(t), path: "fuzz-roundtrip.npy")
    if back.shape != t.shape || back.toArray().map(\.bitPattern) != t.toArray().map(\.bitPattern) {
        fatalError("npy: round trip changed \(t.shape)")
    }
    return 0
}
