import Datasets
import Foundation
import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// `gan evaluate`'s FID pipeline (GAN/FID.swift): which real images it compares against, the
/// real-vs-real floor, and the Frechet distance where the covariances are singular.
final class FIDTests: XCTestCase {
    static let mnist = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("data/mnist-5k").path

    func loadTrain() throws -> ImageDataset { try ImageDataset.load(folder: FIDTests.mnist, split: .train) }

    func counts(_ idx: [Int], _ labels: [UInt8]) -> [Int] {
        var c = [Int](repeating: 0, count: 10)
        for i in idx { c[Int(labels[i])] += 1 }
        return c
    }

    /// The reference covers every class in proportion (the real digits are stored in class
    /// order: the first 2,000 are digits 0-4 only), is seeded, and the floor set is disjoint.
    func testReferenceIsAStratifiedSeededDraw() throws {
        let train = try loadTrain()
        XCTAssertEqual(counts(Array(0..<4500), train.labels), Array(repeating: 450, count: 10), "the data set changed")
        let r = RealReference(labels: train.labels, count: 2000, seed: 7)
        XCTAssertEqual(r.indices.count, 2000)
        XCTAssertEqual(Set(r.indices).count, 2000, "no image twice")
        XCTAssertEqual(counts(r.indices, train.labels), Array(repeating: 200, count: 10))
        XCTAssertEqual(r.perClass, Array(repeating: 200, count: 10))
        XCTAssertEqual(r.floorIndices.count, 2000)
        XCTAssertEqual(counts(r.floorIndices, train.labels), Array(repeating: 200, count: 10))
        XCTAssertTrue(Set(r.indices).isDisjoint(with: r.floorIndices), "the floor set overlaps the reference")
        XCTAssertEqual(r.describe(), "2000 of 4500 train images, 200 per class over 10 classes, stratified draw with seed 7")
        // Seeded: the same seed draws the same images, another seed others (a draw, not the
        // first 200 of each class).
        XCTAssertEqual(RealReference(labels: train.labels, count: 2000, seed: 7), r)
        let other = RealReference(labels: train.labels, count: 2000, seed: 8)
        XCTAssertNotEqual(other.indices, r.indices)
        XCTAssertLessThan(Set(other.indices).intersection(r.indices).count, 1400, "seeds 7 and 8 draw nearly the same images")
        // More than half the split: the floor set takes what is left (500 of each class... 250).
        let big = RealReference(labels: train.labels, count: 4000, seed: 1)
        XCTAssertEqual(counts(big.indices, train.labels), Array(repeating: 400, count: 10))
        XCTAssertEqual(counts(big.floorIndices, train.labels), Array(repeating: 50, count: 10))
        // The whole split (and more asked for than there is).
        let whole = RealReference(labels: train.labels, count: 9999, seed: 1)
        XCTAssertEqual(whole.indices, Array(0..<4500))
        XCTAssertEqual(whole.floorIndices, [])
        XCTAssertTrue(whole.describe().contains("the whole split"), whole.describe())
    }

    func testStratifiedDrawOfUnbalancedClasses() {
        // 100 zeros, 300 ones, 50 twos, interleaved oddly: 45 images are 10 + 30 + 5.
        var labels: [UInt8] = Array(repeating: 1, count: 300) + Array(repeating: 0, count: 100) + Array(repeating: 2, count: 50)
        var g = RandomGenerator(seed: 3)
        labels = g.permutation(labels.count).map { labels[$0] }
        let r = RealReference(labels: labels, count: 45, seed: 1)
        XCTAssertEqual(r.perClass, [10, 30, 5])
        XCTAssertEqual(Array(counts(r.indices, labels)[0..<3]), [10, 30, 5])
        XCTAssertEqual(Array(counts(r.floorIndices, labels)[0..<3]), [10, 30, 5])
        XCTAssertEqual(r.describe(), "45 of 450 train images, 5-30 per class over 3 classes, stratified draw with seed 1")
        // Largest remainder: 10 of [3, 3, 4] is exact; 2 of [1, 1, 1] goes to the first two;
        // 5 of [7, 2, 1]: 3.5, 1, 0.5 -> 4, 1, 0 (the larger remainder first, ties to the lower class).
        XCTAssertEqual(RealReference.allocate(10, over: [3, 3, 4]), [3, 3, 4])
        XCTAssertEqual(RealReference.allocate(2, over: [1, 1, 1]), [1, 1, 0])
        XCTAssertEqual(RealReference.allocate(5, over: [7, 2, 1]), [4, 1, 0])
        XCTAssertEqual(RealReference.allocate(0, over: [7, 2, 1]), [0, 0, 0])
        XCTAssertEqual(RealReference.allocate(3, over: [0, 5, 0]), [0, 3, 0])
    }

    /// A classifier trained briefly on 1,280 real digits (a stratified draw); its features are
    /// what the FIDs below compare.
    func quickClassifier(_ train: ImageDataset) -> DigitClassifier {
        let pick = RealReference(labels: train.labels, count: 1280, seed: 99).indices
        let side = train.height * train.width
        var px: [UInt8] = []
        for i in pick { px += train.pixels[(i * side)..<((i + 1) * side)] }
        let sub = ImageDataset(pixels: px, count: pick.count, height: train.height, width: train.width,
                               labels: pick.map { train.labels[$0] }, source: "subset")
        var rng = RandomGenerator(seed: 5, stream: 0xC1)
        let clf = DigitClassifier(rng: &rng)
        _ = try! clf.fit(train: sub, test: sub, epochs: 2, seed: 5)
        return clf
    }

    /// The floor (two disjoint real draws of the same size) is near zero next to a generator's
    /// FID; real digits of one class only, or the old reference (the first N of the class-ordered
    /// split: digits 0-4), score far worse than a balanced real draw of the same size.
    func testRealFloorIsSmallAndUnbalancedRealSetsAreFar() throws {
        let train = try loadTrain()
        let clf = quickClassifier(train)
        let n = 400
        let ev = FIDEvaluator(classifier: clf, dataset: train, count: n, seed: 21)
        XCTAssertEqual(ev.floorSize, n)
        var c = GANConfig()
        c.model = .mlp; c.imageSize = 28; c.seed = 1
        let untrained = ev.score(GANModels(config: c), count: n, seed: 4).fid
        let threes = Array(train.labels.indices.filter { train.labels[$0] == 3 }.prefix(n))
        let oneClass = ev.fid(images: batch(train, indices: threes, size: 28))
        let firstN = ev.fid(images: batch(train, indices: Array(0..<n), size: 28))          // digits 0 and 1 only
        let firstHalf = ev.fid(images: batch(train, indices: Array(stride(from: 0, to: 2250, by: 2250 / n)).prefix(n).map { $0 },
                                              size: 28))                                      // digits 0-4
        print("FID floor \(ev.floor), untrained mlp \(untrained), one class \(oneClass), first \(n) \(firstN), digits 0-4 \(firstHalf)")
        XCTAssertTrue(ev.floor.isFinite && ev.floor >= 0, "floor \(ev.floor)")
        XCTAssertLessThan(ev.floor, 0.05 * untrained, "the real-vs-real floor is not small next to an untrained generator's FID")
        XCTAssertGreaterThan(oneClass, 10 * ev.floor, "one class scores like a balanced draw")
        XCTAssertGreaterThan(firstN, 10 * ev.floor, "the first \(n) (class-ordered) score like a balanced draw")
        XCTAssertGreaterThan(firstHalf, 3 * ev.floor, "digits 0-4 score like a balanced draw")
        // The same seed gives the same reference, hence the same numbers.
        let again = FIDEvaluator(classifier: clf, dataset: train, count: n, seed: 21)
        XCTAssertEqual(again.floor, ev.floor)
        XCTAssertEqual(again.fid(images: batch(train, indices: threes, size: 28)), oneClass)
    }

    /// `gan evaluate --npy`: images read from a .npy file score exactly as the same images in
    /// memory (real digits drawn like the floor set score the floor), 32x32 padding is cropped
    /// back, and arrays of the wrong shape or range are refused with the reason.
    func testImagesFromANpyFileScoreLikeTheSameImages() throws {
        let train = try loadTrain()
        let clf = quickClassifier(train)
        let n = 300
        let ev = FIDEvaluator(classifier: clf, dataset: train, count: n, seed: 21)
        let dir = try makeTempDir(self)
        let floorImages = batch(train, indices: ev.reference.floorIndices, size: 28)
        try Npy.write(floorImages.reshape([n, 28, 28]), to: dir + "/floor.npy")
        let read = try FIDEvaluator.sampleImages(try Npy.read(path: dir + "/floor.npy"), name: "floor.npy")
        XCTAssertEqual(read.shape, [n, 1, 28, 28])
        let fromFile = ev.score(images: read)
        XCTAssertEqual(fromFile.fid, ev.floor, accuracy: 1e-6 * max(1, ev.floor))
        XCTAssertEqual(fromFile.classes.histogram.reduce(0, +), n)
        // Padded to 32x32 (as the dcgan models draw digits): the same score.
        try Npy.write(batch(train, indices: ev.reference.floorIndices, size: 32), to: dir + "/floor32.npy")
        let padded = try FIDEvaluator.sampleImages(try Npy.read(path: dir + "/floor32.npy"), name: "floor32.npy")
        XCTAssertEqual(ev.score(images: padded).fid, fromFile.fid, accuracy: 1e-6 * max(1, ev.floor))
        // One class from a file scores far from the floor.
        let threes = Array(train.labels.indices.filter { train.labels[$0] == 3 }.prefix(n))
        XCTAssertGreaterThan(ev.score(images: batch(train, indices: threes, size: 28)).fid, 10 * ev.floor)
        // Refused: wrong shape, size, range, too few, not finite.
        func refused(_ t: Tensor, _ why: String) {
            XCTAssertThrowsError(try FIDEvaluator.sampleImages(t, name: "x.npy")) { XCTAssertTrue("\($0)".contains(why), "\($0)") }
        }
        refused(Tensor.zeros([4, 3, 28, 28]), "expected [N, 1, S, S]")
        refused(Tensor.zeros([4, 1, 16, 16]), "expected [N, 1, S, S]")
        refused(Tensor.zeros([4, 784]), "expected [N, 1, S, S]")
        refused(Tensor.zeros([1, 1, 28, 28]), "FID needs at least 2")
        refused(Tensor(shape: [2, 28, 28], values: [Float](repeating: 0.5, count: 2 * 784).enumerated().map { $0.0 == 7 ? 255 : $0.1 }),
                "must be in [-1, 1]")
        refused(Tensor(shape: [2, 28, 28], values: [Float](repeating: 0, count: 2 * 784).enumerated().map { $0.0 == 9 ? .nan : $0.1 }),
                "not finite")
    }

    /// Fewer samples than feature dimensions (singular covariances): finite, and equal to the
    /// Frechet distance computed another way: tr((S1 S2)^(1/2)) as the sum of square roots of the
    /// eigenvalues of the small symmetric A S2 A^T / (n1 - 1) (A the centred features of the first
    /// set: S1 S2 and A S2 A^T / (n1 - 1) have the same non-zero eigenvalues), found by Jacobi
    /// rotations rather than LAPACK.
    func testFrechetDistanceWithFewerSamplesThanDimensions() {
        var g = RandomGenerator(seed: 12)
        for (n1, n2, d) in [(20, 15, 32), (6, 40, 24), (9, 9, 64)] {
            let a = Tensor.randn([n1, d], generator: &g) * 1.5
            let b = Tensor.randn([n2, d], generator: &g) + 0.3
            let sa = FeatureStatistics(features: a), sb = FeatureStatistics(features: b)
            let fid = frechetDistance(sa, sb)
            let ref = referenceFrechet(a.toArray().map(Double.init), n1, b.toArray().map(Double.init), n2, d)
            XCTAssertTrue(fid.isFinite, "n \(n1), \(n2), d \(d): FID \(fid)")
            XCTAssertEqual(fid, ref, accuracy: 1e-6 * Swift.max(1, Swift.abs(ref)), "n \(n1), \(n2), d \(d)")
            XCTAssertEqual(frechetDistance(sb, sa), ref, accuracy: 1e-6 * Swift.max(1, Swift.abs(ref)), "symmetric: n \(n1), \(n2), d \(d)")
            XCTAssertEqual(frechetDistance(sa, sa), 0, accuracy: 1e-6 * Swift.max(1, Swift.abs(ref)), "self: n \(n1), d \(d)")
        }
    }

    /// The Frechet distance from features by the formula above, in plain loops.
    func referenceFrechet(_ a: [Double], _ n1: Int, _ b: [Double], _ n2: Int, _ d: Int) -> Double {
        func meanOf(_ x: [Double], _ n: Int) -> [Double] { (0..<d).map { j in (0..<n).reduce(0) { $0 + x[$1 * d + j] } / Double(n) } }
        let ma = meanOf(a, n1), mb = meanOf(b, n2)
        let ac = (0..<(n1 * d)).map { a[$0] - ma[$0 % d] }, bc = (0..<(n2 * d)).map { b[$0] - mb[$0 % d] }
        // S2 = bc^T bc / (n2 - 1)
        var s2 = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { var s = 0.0; for k in 0..<n2 { s += bc[k * d + i] * bc[k * d + j] }; s2[i * d + j] = s / Double(n2 - 1) } }
        var tr1 = 0.0, tr2 = 0.0
        for j in 0..<d {
            for k in 0..<n1 { tr1 += ac[k * d + j] * ac[k * d + j] }
            tr2 += s2[j * d + j]
        }
        tr1 /= Double(n1 - 1)
        // M = ac S2 ac^T / (n1 - 1), n1 x n1.
        var as2 = [Double](repeating: 0, count: n1 * d)
        for i in 0..<n1 { for j in 0..<d { var s = 0.0; for k in 0..<d { s += ac[i * d + k] * s2[k * d + j] }; as2[i * d + j] = s } }
        var m = [Double](repeating: 0, count: n1 * n1)
        for i in 0..<n1 { for j in 0..<n1 { var s = 0.0; for k in 0..<d { s += as2[i * d + k] * ac[j * d + k] }; m[i * n1 + j] = s / Double(n1 - 1) } }
        let trSqrt = jacobiEigenvalues(m, n1).reduce(0) { $0 + Swift.max($1, 0).squareRoot() }
        var diff = 0.0
        for j in 0..<d { diff += (ma[j] - mb[j]) * (ma[j] - mb[j]) }
        return diff + tr1 + tr2 - 2 * trSqrt
    }

    /// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations.
    func jacobiEigenvalues(_ a0: [Double], _ n: Int) -> [Double] {
        var a = a0
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
            if off < 1e-26 { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (Swift.abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {   // columns p, q
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {   // rows p, q
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                }
            }
        }
        return (0..<n).map { a[$0 * n + $0] }
    }
}
