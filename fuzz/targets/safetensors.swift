// libFuzzer target: Safetensors.decode (compiled into the Tensors module; see fuzz/run.sh).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let f = try? Safetensors.decode(bytes, path: "fuzz.safetensors") else { return 0 }
    // The allocation bound: entries do not overlap, so the float32s decoded fit in the file.
    let total = f.tensors.values.reduce(0) { $0 + $1.count }
    if total * 4 > size { fatalError("safetensors: \(total) values decoded from a \(size)-byte file") }
    return 0
}
