import Tensors

/// The images at `indices` as a float32 tensor [B, 1, size, size] in [-1, 1], as torchvision's
/// `ToTensor()` + `Normalize([0.5], [0.5])` give (pixel / 255, then (x - 0.5) / 0.5):
/// - `size` equal to the images' size: as they are;
/// - 28x28 images at `size` 32: padded by 2 on each side with 0 pixels (so -1, the background);
/// - any other size: bilinear resize of each image to size x size, as
///   `F.interpolate(x, size, mode='bilinear', align_corners=False)` (torchvision's tensor `Resize`
///   with antialias=False), then normalised.
public func batch(_ ds: ImageDataset, indices: [Int], size: Int) -> Tensor {
    precondition(size > 0, "batch: size must be positive, got \(size)")
    let h = ds.height, w = ds.width, n = indices.count
    for i in indices {
        precondition(i >= 0 && i < ds.count, "batch: index \(i) is outside the data set's 0..<\(ds.count)")
    }
    let out = Tensor(uninitializedShape: [n, 1, size, size])
    let dst = out.data
    // pixel -> ToTensor value (p / 255), exactly as torch computes it in float32.
    var unit = [Float](repeating: 0, count: 256)
    for p in 0..<256 { unit[p] = Float(p) / 255 }
    @inline(__always) func normalise(_ x: Float) -> Float { (x - 0.5) / 0.5 }

    ds.pixels.withUnsafeBufferPointer { pix in
        unit.withUnsafeBufferPointer { unit in
            let src = pix.baseAddress!
            if size == h && size == w {
                for (b, i) in indices.enumerated() {
                    let s = src + i * h * w, d = dst + b * size * size
                    for k in 0..<(h * w) { d[k] = normalise(unit[Int(s[k])]) }
                }
            } else if h == 28 && w == 28 && size == 32 {
                let pad = (size - h) / 2
                for (b, i) in indices.enumerated() {
                    let s = src + i * h * w, d = dst + b * size * size
                    d.update(repeating: -1, count: size * size)
                    for y in 0..<h {
                        let row = d + (y + pad) * size + pad, srow = s + y * w
                        for x in 0..<w { row[x] = normalise(unit[Int(srow[x])]) }
                    }
                }
            } else {
                let ry = BilinearAxis(input: h, output: size), rx = BilinearAxis(input: w, output: size)
                for (b, i) in indices.enumerated() {
                    let s = src + i * h * w, d = dst + b * size * size
                    for y in 0..<size {
                        let r0 = s + ry.i0[y] * w, r1 = s + ry.i1[y] * w
                        let h0 = ry.l0[y], h1 = ry.l1[y]
                        let row = d + y * size
                        for x in 0..<size {
                            let a = rx.i0[x], c = rx.i1[x], w0 = rx.l0[x], w1 = rx.l1[x]
                            let top = unit[Int(r0[a])] * w0 + unit[Int(r0[c])] * w1
                            let bottom = unit[Int(r1[a])] * w0 + unit[Int(r1[c])] * w1
                            row[x] = normalise(top * h0 + bottom * h1)
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Source indices and weights along one axis for PyTorch's bilinear interpolation with
/// align_corners=False (aten/src/ATen/native/UpSample.h: area_pixel_compute_source_index,
/// guard_index_and_lambda), computed in float32 as PyTorch does for float32 tensors.
struct BilinearAxis {
    var i0: [Int] = [], i1: [Int] = []
    var l0: [Float] = [], l1: [Float] = []

    init(input: Int, output: Int) {
        let scale = Float(input) / Float(output)
        for o in 0..<output {
            let real = max(scale * (Float(o) + 0.5) - 0.5, 0)
            let index = min(Int(real.rounded(.down)), input - 1)
            let lambda = min(max(real - Float(index), 0), 1)
            i0.append(index)
            i1.append(index + (index < input - 1 ? 1 : 0))
            l1.append(lambda)
            l0.append(1 - lambda)
        }
    }
}
