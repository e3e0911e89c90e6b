import CKernels
import Tensors
import TestSupport
import XCTest

/// The convolutions' column kernels (`rg_im2col`, `rg_col2im` in CKernels) against the plain
/// strided loops they replaced, for every kind of geometry: strides 1-3, paddings 0-2 (also
/// wider than the kernel reaches), kernels 1-5, non-square images, batch slices. im2col is a copy
/// and col2im sums each position's terms in the same order as the loops, so both must agree bit
/// for bit.
final class Im2colTests: XCTestCase {
    struct Geometry: CustomStringConvertible {
        var cin, h, w, kh, kw, sh, sw, ph, pw: Int
        var ho: Int { (h + 2 * ph - kh) / sh + 1 }
        var wo: Int { (w + 2 * pw - kw) / sw + 1 }
        var c: rg_conv_geometry {
            rg_conv_geometry(cin: cin, h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw, ho: ho, wo: wo)
        }
        var description: String { "cin \(cin) \(h)x\(w) kernel \(kh)x\(kw) stride \(sh),\(sw) padding \(ph),\(pw)" }
    }

    /// The loops the C kernels replaced (Conv.swift before), as the reference.
    func referenceIm2col(_ x: [Float], _ g: Geometry, _ n0: Int, _ nc: Int) -> [Float] {
        let p = g.ho * g.wo, ld = nc * p
        var cols = [Float](repeating: .nan, count: g.cin * g.kh * g.kw * ld)
        for c in 0..<g.cin { for i in 0..<g.kh { for j in 0..<g.kw {
            let row = ((c * g.kh + i) * g.kw + j) * ld
            for s in 0..<nc { for oy in 0..<g.ho { for ox in 0..<g.wo {
                let iy = oy * g.sh - g.ph + i, ix = ox * g.sw - g.pw + j
                let inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w
                cols[row + s * p + oy * g.wo + ox] = inside ? x[(((n0 + s) * g.cin + c) * g.h + iy) * g.w + ix] : 0
            } } }
        } } }
        return cols
    }

    func referenceCol2im(_ cols: [Float], _ g: Geometry, _ n0: Int, _ nc: Int, batch: Int) -> [Float] {
        let p = g.ho * g.wo, ld = nc * p
        var dx = [Float](repeating: 0, count: batch * g.cin * g.h * g.w)
        for c in 0..<g.cin { for i in 0..<g.kh { for j in 0..<g.kw {
            let row = ((c * g.kh + i) * g.kw + j) * ld
            for s in 0..<nc { for oy in 0..<g.ho { for ox in 0..<g.wo {
                let iy = oy * g.sh - g.ph + i, ix = ox * g.sw - g.pw + j
                guard iy >= 0 && iy < g.h && ix >= 0 && ix < g.w else { continue }
                dx[(((n0 + s) * g.cin + c) * g.h + iy) * g.w + ix] += cols[row + s * p + oy * g.wo + ox]
            } } }
        } } }
        return dx
    }

    func check(_ g: Geometry, n0: Int, nc: Int, rng: inout RandomGenerator, file: StaticString = #filePath, line: UInt = #line) {
        let batch = n0 + nc + 1
        // Values whose sums round differently in another order.
        let x = (0..<(batch * g.cin * g.h * g.w)).map { _ in rng.normal() * Float(1 << Int(rng.uniform() * 12)) }
        var cg = g.c
        let rows = g.cin * g.kh * g.kw, ld = nc * g.ho * g.wo
        var cols = [Float](repeating: .nan, count: rows * ld)
        // The scratch starts as NaNs: nothing may be read from it before it is written.
        var scratch = [Float](repeating: .nan, count: rg_conv_plane_floats(&cg, nc))
        x.withUnsafeBufferPointer { xp in
            cols.withUnsafeMutableBufferPointer { cp in
                scratch.withUnsafeMutableBufferPointer { rg_im2col(xp.baseAddress!, &cg, n0, nc, cp.baseAddress!, $0.baseAddress!) }
            }
        }
        let want = referenceIm2col(x, g, n0, nc)
        XCTAssertEqual(cols.map { $0.bitPattern }, want.map { $0.bitPattern }, "im2col, \(g), images \(n0)..<\(n0 + nc)", file: file, line: line)

        let terms = (0..<(rows * ld)).map { _ in rng.normal() * Float(1 << Int(rng.uniform() * 12)) }
        var dx = [Float](repeating: 0, count: batch * g.cin * g.h * g.w)
        scratch = [Float](repeating: .nan, count: scratch.count)
        terms.withUnsafeBufferPointer { tp in
            dx.withUnsafeMutableBufferPointer { dp in
                scratch.withUnsafeMutableBufferPointer { rg_col2im(tp.baseAddress!, &cg, n0, nc, dp.baseAddress!, $0.baseAddress!) }
            }
        }
        let sums = referenceCol2im(terms, g, n0, nc, batch: batch)
        XCTAssertEqual(dx.map { $0.bitPattern }, sums.map { $0.bitPattern }, "col2im, \(g), images \(n0)..<\(n0 + nc)", file: file, line: line)
    }

    func testTheModelsGeometries() {
        var rng = RandomGenerator(seed: 5)
        // DCGAN's 4x4 stride-2 layers (conv and, in its forward orientation, the transposed conv),
        // the 4x4 valid one, a 3x3 "same" conv.
        for g in [Geometry(cin: 3, h: 32, w: 32, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1),
                  Geometry(cin: 4, h: 8, w: 8, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1),
                  Geometry(cin: 2, h: 4, w: 4, kh: 4, kw: 4, sh: 1, sw: 1, ph: 0, pw: 0),
                  Geometry(cin: 3, h: 9, w: 7, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1)] {
            check(g, n0: 0, nc: 1, rng: &rng)
            check(g, n0: 2, nc: 3, rng: &rng)
        }
    }

    func testRandomGeometries() {
        var rng = RandomGenerator(seed: 17)
        func pick(_ lo: Int, _ hi: Int) -> Int { lo + Int(rng.uniform() * Float(hi - lo + 1)) % (hi - lo + 1) }
        var tried = 0
        while tried < 400 {
            let g = Geometry(cin: pick(1, 3), h: pick(1, 9), w: pick(1, 9), kh: pick(1, 5), kw: pick(1, 5),
                             sh: pick(1, 3), sw: pick(1, 3), ph: pick(0, 2), pw: pick(0, 2))
            guard g.h + 2 * g.ph >= g.kh, g.w + 2 * g.pw >= g.kw else { continue }
            check(g, n0: pick(0, 2), nc: pick(1, 3), rng: &rng)
            tried += 1
        }
    }
}
