// libFuzzer target: Checkpoint.decode and restore (compiled into the GAN module; see
// fuzz/run.sh). Unless the first byte is 0xFF, the trailing CRC-32 is recomputed so that the
// fuzzer gets past the checksum to the header, the tensor table and the optimizer state.
import CZlib
import Foundation

/// Models of the seed checkpoints' config (fuzz/corpus/checkpoint), built once; restore loads
/// what fits into them.
nonisolated(unsafe) private var models: GANModels? = nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Data(bytes: data, count: size)
    if size >= 24 && data[0] != 0xFF {
        let crc = bytes.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt(size - 4))) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((size - 4)..<size, with: $0) }
    } else if size >= 1 && data[0] == 0xFF {
        bytes[0] = Checkpoint.magic[0]
    }
    guard let ck = try? Checkpoint.decode(bytes, path: "fuzz.rgan") else { return 0 }
    let total = ck.tensors.reduce(0) { $0 + $1.tensor.count }
    if total * 4 > size { fatalError("checkpoint: \(total) values decoded from a \(size)-byte file") }
    if ck.config.validate() != nil { fatalError("checkpoint: decoded an invalid config") }
    if models == nil {
        var c = GANConfig()
        c.imageSize = 16; c.ngf = 4; c.ndf = 4; c.latentDim = 8; c.batchSize = 4; c.steps = 2; c.seed = 1
        models = GANModels(config: c)
    }
    try? ck.restore(into: models!, path: "fuzz.rgan")
    return 0
}
