// libFuzzer target: IDX.parse on raw and gzip files (compiled into the Datasets module; see
// fuzz/run.sh). The first byte picks images (odd) or labels (even); the rest is the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let magic = data[0] & 1 == 1 ? IDX.imagesMagic : IDX.labelsMagic
    let file = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    guard let (dims, body) = try? IDX.parse(file, path: "fuzz-idx", magic: magic, what: "pixels") else { return 0 }
    // The body holds exactly the product of the dimensions, within the 1 GiB cap; a raw file's
    // body is no larger than the file.
    if dims.reduce(1, *) != body.count || body.count > IDX.maxBodyBytes { fatalError("idx: dims \(dims), \(body.count) bytes") }
    if !Gzip.isGzip(UnsafeBufferPointer(start: data + 1, count: size - 1)) && body.count > file.count {
        fatalError("idx: \(body.count) body bytes from a \(file.count)-byte file")
    }
    return 0
}
