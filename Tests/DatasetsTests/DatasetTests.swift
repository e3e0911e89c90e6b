import Datasets
import Foundation
import TestSupport
import XCTest

final class DatasetTests: XCTestCase {
    /// A folder with `count` images of 2x3 and `labelCount` labels, named as given.
    func makeFolder(images: String, labels: String, count: Int = 4, labelCount: Int = 4, gz: Bool) throws -> String {
        let dir = try makeTempDir(self)
        let body = (0..<(count * 6)).map { UInt8($0) }
        let img = idxBytes(magic: 0x803, dims: [count, 2, 3], body: body)
        let lab = idxBytes(magic: 0x801, dims: [labelCount], body: (0..<labelCount).map { UInt8($0 % 10) })
        try writeBytes(gz ? gzip(img) : img, to: "\(dir)/\(images)")
        try writeBytes(gz ? gzip(lab) : lab, to: "\(dir)/\(labels)")
        return dir
    }

    func testLoadsEveryNaming() throws {
        let namings: [(String, String, Split, Bool)] = [
            ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", .train, false),
            ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", .train, true),
            ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", .test, false),
            ("t10k-images.idx3-ubyte.gz", "t10k-labels.idx1-ubyte.gz", .test, true),
        ]
        for (images, labels, split, gz) in namings {
            let dir = try makeFolder(images: images, labels: labels, gz: gz)
            let ds = try ImageDataset.load(folder: dir, split: split)
            XCTAssertEqual(ds.count, 4, images)
            XCTAssertEqual(ds.height, 2)
            XCTAssertEqual(ds.width, 3)
            XCTAssertEqual(ds.pixels, (0..<24).map { UInt8($0) })
            XCTAssertEqual(ds.labels, [0, 1, 2, 3])
            XCTAssertEqual(ds.source, "\(dir)/\(images)")
        }
    }

    func testMissingFilesListWhatWasLookedFor() throws {
        let dir = try makeFolder(images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte", gz: false)
        assertDataError(try ImageDataset.load(folder: dir, split: .test),
                        contains: [dir, "no test images", "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz",
                                   "t10k-images.idx3-ubyte", "t10k-images.idx3-ubyte.gz"])
        try FileManager.default.removeItem(atPath: "\(dir)/train-labels-idx1-ubyte")
        assertDataError(try ImageDataset.load(folder: dir, split: .train),
                        contains: [dir, "no train labels", "train-labels-idx1-ubyte.gz"])
        assertDataError(try ImageDataset.load(folder: "\(dir)/nope", split: .train),
                        contains: ["\(dir)/nope", "missing folder"])
    }

    func testCountMismatchNamesBothFiles() throws {
        let dir = try makeFolder(images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz",
                                 labelCount: 3, gz: true)
        assertDataError(try ImageDataset.load(folder: dir, split: .train),
                        contains: ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "4 images but 3 labels"])
    }

    func testNamesAndDefaultFolders() {
        XCTAssertEqual(DatasetName(rawValue: "fashion-mnist"), .fashionMnist)
        XCTAssertEqual(DatasetName.allCases.map(\.rawValue), ["mnist", "fashion-mnist"])
        XCTAssertEqual(DatasetName.fashionMnist.defaultFolder, "/usr/share/datasets/fashion-mnist")
        if let root = ProcessInfo.processInfo.environment["RINGGAN_DATA"], !root.isEmpty {
            XCTAssertTrue(DatasetName.mnist.defaultFolder.hasPrefix(root))
        } else {
            XCTAssertEqual(DatasetName.mnist.defaultFolder, "data/mnist-5k")
        }
        // A missing default folder says how to get the data.
        assertDataError(try DatasetName.mnist.load(split: .train, folder: "/nonexistent/mnist"),
                        contains: ["/nonexistent/mnist"])
    }

    /// The 5,000 real digits written by scripts/fetch_mnist.py.
    func testRealMNIST5k() throws {
        let root = ProcessInfo.processInfo.environment["RINGGAN_DATA"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "\(repoRoot)/data"
        let folder = "\(root)/mnist-5k"
        guard FileManager.default.fileExists(atPath: folder) else {
            XCTFail("\(folder) is missing: run scripts/setup.sh (it writes the MNIST digits there)")
            return
        }
        for (split, perClass) in [(Split.train, 450), (.test, 50)] {
            let ds = try DatasetName.mnist.load(split: split, folder: folder)
            XCTAssertEqual(ds.count, perClass * 10)
            XCTAssertEqual(ds.height, 28)
            XCTAssertEqual(ds.width, 28)
            XCTAssertEqual(ds.pixels.count, ds.count * 784)
            var counts = [Int](repeating: 0, count: 10)
            for l in ds.labels { counts[Int(l)] += 1 }
            XCTAssertEqual(counts, [Int](repeating: perClass, count: 10), "\(split) labels per class")
            XCTAssertEqual(ds.pixels.min(), 0)
            XCTAssertEqual(ds.pixels.max(), 255)
            // Real digits: mostly background, a fair share of ink.
            let ink = Double(ds.pixels.lazy.filter { $0 > 128 }.count) / Double(ds.pixels.count)
            XCTAssertTrue(ink > 0.05 && ink < 0.3, "fraction of ink pixels \(ink)")
        }
    }

    func testFashionMNIST() throws {
        let folder = DatasetName.fashionMnist.defaultFolder
        guard FileManager.default.fileExists(atPath: folder) else {
            let setup = (try? String(contentsOfFile: "\(repoRoot)/scripts/setup.sh", encoding: .utf8)) ?? ""
            let listed = setup.split(separator: "\n").contains { $0.hasPrefix("APT_PACKAGES=") && $0.contains("dataset-fashion-mnist") }
            if listed { XCTFail("\(folder) is missing: run scripts/setup.sh (it installs dataset-fashion-mnist)") }
            return
        }
        let ds = try ImageDataset.load(.fashionMnist, split: .train)
        XCTAssertEqual(ds.count, 60_000)
        XCTAssertEqual(ds.height, 28)
        XCTAssertEqual(ds.width, 28)
        var counts = [Int](repeating: 0, count: 10)
        for l in ds.labels { counts[Int(l)] += 1 }
        XCTAssertEqual(counts, [Int](repeating: 6000, count: 10))
    }
}
