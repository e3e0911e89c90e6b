import Foundation
import Tensors
import TestSupport
import XCTest

final class NpyTests: XCTestCase {
    /// An .npy file made by hand: any version, descr, order, shape text and data.
    func npy(major: UInt8 = 1, descr: String = "<f4", fortran: Bool = false, shape: String, data: [UInt8]) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        let pre = major == 1 ? 10 : 12
        header += String(repeating: " ", count: (64 - (pre + header.utf8.count + 1) % 64) % 64) + "\n"
        var out = Data(Npy.magic + [major, 0])
        let n = header.utf8.count
        out.append(contentsOf: major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), 0, 0])
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    func f32Bytes(_ v: [Float]) -> [UInt8] { v.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } } }
    func f64Bytes(_ v: [Double]) -> [UInt8] { v.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } } }

    func testRoundTripsAndHeaderLayout() throws {
        for shape in [[], [5], [2, 3], [2, 1, 3, 4], [0, 7]] {
            let n = shape.reduce(1, *)
            let t = Tensor(shape: shape, values: (0..<n).map { Float($0) * 0.25 - 1 })
            let bytes = Npy.encode(t)
            let hlen = Int(bytes[8]) | Int(bytes[9]) << 8
            XCTAssertEqual((10 + hlen) % 64, 0, "\(shape): data starts 64-byte aligned")
            XCTAssertEqual(bytes[10 + hlen - 1], 0x0A, "\(shape): the header ends with a newline")
            let back = try Npy.decode(bytes)
            XCTAssertEqual(back.shape, shape)
            XCTAssertEqual(back.toArray(), t.toArray())
        }
        let header = String(decoding: Npy.encode(Tensor.zeros([2, 3])).dropFirst(10).prefix(60), as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), header)
        let one = String(decoding: Npy.encode(Tensor.zeros([4])).dropFirst(10).prefix(60), as: UTF8.self)
        XCTAssertTrue(one.contains("'shape': (4,)"), one)
        // Special values survive.
        let special = Tensor(shape: [4], values: [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude])
        XCTAssertEqual(try Npy.decode(Npy.encode(special)).toArray().map { $0.bitPattern }, special.toArray().map { $0.bitPattern })
    }

    func testReadsVersion2Float64AndPython2Headers() throws {
        var t = try Npy.decode(npy(major: 2, shape: "(2, 2)", data: f32Bytes([1, 2, 3, 4])))
        XCTAssertEqual(t.shape, [2, 2])
        XCTAssertEqual(t.toArray(), [1, 2, 3, 4])
        t = try Npy.decode(npy(descr: "<f8", shape: "(3,)", data: f64Bytes([0.1, -2.5, 1e300])))
        XCTAssertEqual(t.toArray(), [Float(0.1), -2.5, .infinity])
        t = try Npy.decode(npy(major: 3, shape: "(1L, 2L)", data: f32Bytes([7, 8])))
        XCTAssertEqual(t.shape, [1, 2])
        // Fortran order of a 1-d array is the same bytes.
        t = try Npy.decode(npy(fortran: true, shape: "(2,)", data: f32Bytes([5, 6])))
        XCTAssertEqual(t.toArray(), [5, 6])
    }

    func testErrorsNameTheFileAndTheProblem() throws {
        let dir = try makeTempDir(self)
        func check(_ bytes: Data, _ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let p = dir + "/bad.npy"
            try bytes.write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try Npy.read(path: p), file: file, line: line) { e in
                XCTAssertTrue("\(e)".contains("bad.npy"), "\(e)", file: file, line: line)
                XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
            }
        }
        try check(Data("PK\u{3}\u{4} a zip file, not an npy".utf8), "magic")
        try check(npy(descr: "<i8", shape: "(2,)", data: [UInt8](repeating: 0, count: 16)), "unsupported dtype '<i8'")
        try check(npy(descr: ">f4", shape: "(2,)", data: [UInt8](repeating: 0, count: 8)), "unsupported dtype '>f4'")
        try check(npy(fortran: true, shape: "(2, 3)", data: f32Bytes([Float](repeating: 0, count: 6))), "Fortran")
        try check(npy(shape: "(2, 3)", data: f32Bytes([1, 2, 3, 4, 5])), "needs 24 data bytes, the file has 20")
        try check(npy(shape: "(2,)", data: f32Bytes([1, 2, 3])), "needs 8 data bytes, the file has 12")
        var v9 = npy(shape: "(1,)", data: f32Bytes([1]))
        v9[6] = 9
        try check(v9, "version 9.0")
        try check(npy(shape: "[2]", data: f32Bytes([1, 2])), "cannot parse the header")
        XCTAssertThrowsError(try Npy.read(path: dir + "/missing.npy")) { XCTAssertTrue("\($0)".contains("missing.npy"), "\($0)") }
    }

    /// NumPy reads what we write and we read what NumPy writes (v1.0, v2.0, float64).
    func testNumPyInterop() throws {
        try InteropSupport.require(["numpy"])
        let dir = try makeTempDir(self)
        let t = Tensor(shape: [3, 2, 2], values: (0..<12).map { Float($0) / 7 - 0.5 })
        try Npy.write(t, to: dir + "/ours.npy")
        let script = """
        import json, numpy as np
        a = np.load('ours.npy')
        ok = a.dtype == np.float32 and a.shape == (3, 2, 2) and bool((a.ravel() == (np.arange(12, dtype=np.float32) / np.float32(7) - np.float32(0.5))).all())
        np.save('f4.npy', np.arange(6, dtype='<f4').reshape(2, 3) * np.float32(0.5))
        np.save('f8.npy', np.linspace(-1, 1, 5))
        with open('v2.npy', 'wb') as f:
            np.lib.format.write_array(f, np.ones((2, 2), dtype='<f4'), version=(2, 0))
        np.save('fortran.npy', np.asfortranarray(np.ones((2, 3), dtype='<f4')))
        np.save('ints.npy', np.arange(3))
        print(json.dumps({"ok": ok}))
        """
        let r = try runProcess("/usr/bin/env", [InteropSupport.python, "-c", script], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"ok\": true"), "numpy read our file wrongly: \(r.stdout) \(r.stderr)")
        XCTAssertEqual(try Npy.read(path: dir + "/f4.npy").toArray(), [0, 0.5, 1, 1.5, 2, 2.5])
        XCTAssertEqual(try Npy.read(path: dir + "/f4.npy").shape, [2, 3])
        XCTAssertEqual(try Npy.read(path: dir + "/f8.npy").toArray(), [-1, -0.5, 0, 0.5, 1])
        XCTAssertEqual(try Npy.read(path: dir + "/v2.npy").toArray(), [1, 1, 1, 1])
        XCTAssertThrowsError(try Npy.read(path: dir + "/fortran.npy")) { XCTAssertTrue("\($0)".contains("Fortran"), "\($0)") }
        XCTAssertThrowsError(try Npy.read(path: dir + "/ints.npy")) { XCTAssertTrue("\($0)".contains("'<i8'"), "\($0)") }
    }

    /// `gan sample` takes latents from .npy and writes images as .npy (and a PNG at once).
    func testSampleWithNpyLatentsAndOutputs() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnistFolder), "\(mnistFolder) is missing: run scripts/setup.sh")
        let work = try makeTempDir(self)
        try gan(["train", "--model", "dcgan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--latent-dim", "10", "--steps", "1",
                 "--batch", "8", "--data", mnistFolder, "--name", "r"], cwd: work)
        let ck = "runs/r/checkpoints/step_00000001.rgan"
        // Latents out, images out as .npy and PNG.
        try gan(["sample", "--checkpoint", ck, "--count", "5", "--latents-out", "z.npy", "--out", "a.npy", "--out", "a.png"], cwd: work)
        let z = try Npy.read(path: work + "/z.npy"), a = try Npy.read(path: work + "/a.npy")
        XCTAssertEqual(z.shape, [5, 10])
        XCTAssertEqual(a.shape, [5, 1, 16, 16])
        XCTAssertTrue(a.toArray().allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: work + "/a.png")).prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        // The same latents back in give the same images; a subset gives the same rows.
        try gan(["sample", "--checkpoint", ck, "--latents", "z.npy", "--out", "b.npy"], cwd: work)
        XCTAssertEqual(try Npy.read(path: work + "/b.npy").toArray(), a.toArray())
        try Npy.write(z.narrow(0, 3, 2), to: work + "/z2.npy")
        try gan(["sample", "--checkpoint", ck, "--latents", "z2.npy", "--out", "c.npy"], cwd: work)
        // (Another batch size may round differently inside the GEMMs.)
        assertClose(try Npy.read(path: work + "/c.npy"), a.narrow(0, 3, 2), atol: 1e-6, rtol: 0, "rows 3 and 4 alone")
        // Wrong latent size, a bad file: clear errors.
        try Npy.write(Tensor.zeros([4, 100]), to: work + "/wrong.npy")
        var e = try gan(["sample", "--checkpoint", ck, "--latents", "wrong.npy", "--out", "x.npy"], cwd: work, expect: 1)
        XCTAssertTrue(e.stderr.contains("wrong.npy") && e.stderr.contains("[4, 100]") && e.stderr.contains("[N, 10]"), e.stderr)
        try Data("nope".utf8).write(to: URL(fileURLWithPath: work + "/junk.npy"))
        e = try gan(["sample", "--checkpoint", ck, "--latents", "junk.npy"], cwd: work, expect: 1)
        XCTAssertTrue(e.stderr.contains("junk.npy") && e.stderr.contains("magic"), e.stderr)
    }
}
