import Datasets
import Tensors
import XCTest

final class BatchTests: XCTestCase {
    func dataset(_ pixels: [UInt8], count: Int, h: Int, w: Int) -> ImageDataset {
        ImageDataset(pixels: pixels, count: count, height: h, width: w,
                     labels: [UInt8](repeating: 0, count: count), source: "test")
    }

    /// Three 28x28 images: all 0, all 255, and a gradient.
    lazy var ds28: ImageDataset = {
        let grad = (0..<784).map { UInt8($0 % 256) }
        return dataset([UInt8](repeating: 0, count: 784) + [UInt8](repeating: 255, count: 784) + grad,
                       count: 3, h: 28, w: 28)
    }()

    func testSize28AsIs() {
        let t = batch(ds28, indices: [2, 1, 0], size: 28)
        XCTAssertEqual(t.shape, [3, 1, 28, 28])
        let v = t.toArray()
        for k in 0..<784 {
            XCTAssertEqual(v[k], Float(k % 256) / 255 * 2 - 1, accuracy: 1e-6)
        }
        XCTAssertTrue(v[784..<1568].allSatisfy { $0 == 1 })
        XCTAssertTrue(v[1568...].allSatisfy { $0 == -1 })
        XCTAssertEqual(v.min(), -1)
        XCTAssertEqual(v.max(), 1)
    }

    func testSize32PadsWithBackground() {
        let t = batch(ds28, indices: [1], size: 32)
        XCTAssertEqual(t.shape, [1, 1, 32, 32])
        let v = t.toArray()
        for y in 0..<32 {
            for x in 0..<32 {
                let inside = (2..<30).contains(y) && (2..<30).contains(x)
                XCTAssertEqual(v[y * 32 + x], inside ? 1 : -1, "(\(y), \(x))")
            }
        }
        let g = batch(ds28, indices: [2], size: 32).toArray()
        XCTAssertEqual(g[2 * 32 + 2], -1)                        // pixel (0,0) = 0
        XCTAssertEqual(g[2 * 32 + 3], 1.0 / 255 * 2 - 1, accuracy: 1e-6)   // pixel (0,1) = 1
    }

    func testSize64ShapeAndRange() {
        let t = batch(ds28, indices: [0, 1, 2, 2], size: 64)
        XCTAssertEqual(t.shape, [4, 1, 64, 64])
        let v = t.toArray()
        XCTAssertTrue(v.allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertTrue(v[0..<4096].allSatisfy { $0 == -1 })
        XCTAssertTrue(v[4096..<8192].allSatisfy { abs($0 - 1) < 1e-6 })
        XCTAssertEqual(Array(v[8192..<12288]), Array(v[12288...]))
    }

    // Expected values: torch 2.13 CPU,
    //   x = torch.tensor(pix, dtype=torch.uint8).reshape(1, 1, h, w).float().div(255)
    //   F.interpolate(x, size=(n, n), mode='bilinear', align_corners=False).sub(0.5).div(0.5)
    func testBilinear2x2To4x4MatchesPyTorch() {
        let t = batch(dataset([0, 255, 128, 64], count: 1, h: 2, w: 2), indices: [0], size: 4)
        let expected: [Float] = [
            -1.0, -0.5, 0.5, 1.0,
            -0.7490196228027344, -0.4053921699523926, 0.281862735748291, 0.6254901885986328,
            -0.24705874919891357, -0.21617645025253296, -0.15441173315048218, -0.12352937459945679,
            0.003921627998352051, -0.12156862020492554, -0.37254899740219116, -0.498039186000824,
        ]
        XCTAssertEqual(t.shape, [1, 1, 4, 4])
        for (a, b) in zip(t.toArray(), expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testBilinear3x3To5x5MatchesPyTorch() {
        let t = batch(dataset([0, 10, 20, 30, 40, 50, 60, 70, 255], count: 1, h: 3, w: 3), indices: [0], size: 5)
        let expected: [Float] = [
            -1.0, -0.9686274528503418, -0.9215686321258545, -0.8745098114013672, -0.843137264251709,
            -0.9058823585510254, -0.8745098114013672, -0.8274509906768799, -0.7803921103477478, -0.7490196228027344,
            -0.7647058963775635, -0.7333333492279053, -0.686274528503418, -0.6392157077789307, -0.6078431606292725,
            -0.6235293745994568, -0.5921567678451538, -0.5450979471206665, -0.0039212703704833984, 0.35686302185058594,
            -0.529411792755127, -0.498039186000824, -0.45098036527633667, 0.41960811614990234, 1.0,
        ]
        for (a, b) in zip(t.toArray(), expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testBilinear28To64MatchesPyTorch() {
        var pix: [UInt8] = []
        for i in 0..<28 { for j in 0..<28 { pix.append(UInt8((i * 7 + j * 13) % 256)) } }
        let v = batch(dataset(pix, count: 1, h: 28, w: 28), indices: [0], size: 64).toArray()
        let expected: [Int: Float] = [0: -1.0, 1: -0.9840686321258545, 63: -0.2549019455909729,
                                      64: -0.9914215803146362, 65: -0.9754902124404907,
                                      1000: -0.9073529243469238, 2047: 0.4742647409439087,
                                      4095: -0.7803921699523926]
        for (k, e) in expected { XCTAssertEqual(v[k], e, accuracy: 1e-6, "element \(k)") }
        XCTAssertEqual(Double(v.reduce(0, +)), 46.8510639667511, accuracy: 1e-3)
    }
}
