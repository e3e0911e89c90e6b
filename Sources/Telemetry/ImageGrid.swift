import Tensors

/// Images [N, C, H, W] (C = 1 or 3) with values in [-1, 1] laid out as
/// `torchvision.utils.make_grid(((images + 1) / 2), nrow, padding, pad_value=0)` and converted to
/// bytes as `save_image` does: `x * 255 + 0.5`, clamped to [0, 255], truncated. `min(nrow, N)`
/// images per row; padding pixels are 0. Gray images give a 1-channel grid (make_grid would copy
/// the channel three times: the same picture).
public func imageGrid(_ images: Tensor, nrow: Int = 8, padding: Int = 2)
    -> (width: Int, height: Int, channels: Int, pixels: [UInt8]) {
    precondition(images.rank == 4 && (images.shape[1] == 1 || images.shape[1] == 3),
                 "imageGrid: expected [N, 1 or 3, H, W], got \(images.shape)")
    precondition(nrow > 0 && padding >= 0, "imageGrid: nrow \(nrow), padding \(padding)")
    let n = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3]
    precondition(n > 0, "imageGrid: no images")
    let xmaps = min(nrow, n), ymaps = (n + xmaps - 1) / xmaps
    let cellH = h + padding, cellW = w + padding
    let gridH = ymaps * cellH + padding, gridW = xmaps * cellW + padding
    var pixels = [UInt8](repeating: 0, count: gridH * gridW * c)
    let src = images.data
    pixels.withUnsafeMutableBufferPointer { out in
        let dst = out.baseAddress!
        for k in 0..<n {
            let top = (k / xmaps) * cellH + padding, left = (k % xmaps) * cellW + padding
            for ch in 0..<c {
                let plane = src + (k * c + ch) * h * w
                for y in 0..<h {
                    let row = plane + y * w
                    let o = dst + ((top + y) * gridW + left) * c + ch
                    for x in 0..<w { o[x * c] = gridByte(row[x]) }
                }
            }
        }
    }
    return (gridW, gridH, c, pixels)
}

/// A value in [-1, 1] as a byte, with torchvision's rounding (NaN gives 0).
@inlinable public func gridByte(_ v: Float) -> UInt8 {
    let x = ((v + 1) / 2) * 255 + 0.5
    if !(x > 0) { return 0 }
    return x >= 255 ? 255 : UInt8(x)
}

/// Writes `imageGrid(images, nrow:)` as a PNG file (atomically).
public func saveImageGrid(_ images: Tensor, to path: String, nrow: Int = 8) throws {
    let g = imageGrid(images, nrow: nrow)
    try PNG.write(width: g.width, height: g.height, channels: g.channels, pixels: g.pixels, to: path)
}
