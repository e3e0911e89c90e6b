import Foundation

public enum Split: String, Sendable, CaseIterable {
    case train, test

    /// The file-name prefix MNIST uses for this split.
    var filePrefix: String { self == .train ? "train" : "t10k" }
}

/// Gray images with labels, in memory: `pixels` holds `count` images of `height` x `width` bytes,
/// row-major, one after another.
public struct ImageDataset: Sendable {
    public let pixels: [UInt8]
    public let count: Int
    public let height: Int
    public let width: Int
    public let labels: [UInt8]
    /// Where the images came from (the images file, or a description).
    public let source: String

    public init(pixels: [UInt8], count: Int, height: Int, width: Int, labels: [UInt8], source: String) {
        precondition(height > 0 && width > 0 && pixels.count == count * height * width,
                     "ImageDataset: \(pixels.count) pixels for \(count) images of \(height)x\(width)")
        precondition(labels.count == count, "ImageDataset: \(count) images but \(labels.count) labels")
        self.pixels = pixels
        self.count = count
        self.height = height
        self.width = width
        self.labels = labels
        self.source = source
    }

    /// Loads one split of a standard MNIST folder: `train-images-idx3-ubyte` and
    /// `train-labels-idx1-ubyte` (or `t10k-...` for `.test`), each raw or `.gz`, also accepting the
    /// dotted names `train-images.idx3-ubyte`.
    public static func load(folder: String, split: Split) throws -> ImageDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw DataError(.missingFile, path: folder, "missing folder (no such directory)")
        }
        let imagesPath = try find(in: folder, candidates: candidates(split, "images", 3), what: "\(split) images")
        let labelsPath = try find(in: folder, candidates: candidates(split, "labels", 1), what: "\(split) labels")
        let images = try IDX.readImages(path: imagesPath)
        let labels = try IDX.readLabels(path: labelsPath)
        guard images.count == labels.count else {
            throw DataError(.countMismatch, path: "\(imagesPath) and \(labelsPath)",
                            "\(images.count) images but \(labels.count) labels")
        }
        return ImageDataset(pixels: images.pixels, count: images.count, height: images.rows, width: images.cols,
                            labels: labels, source: imagesPath)
    }

    /// Loads one split of a named data set from its default folder.
    public static func load(_ name: DatasetName, split: Split) throws -> ImageDataset {
        try name.load(split: split)
    }

    static func candidates(_ split: Split, _ kind: String, _ dims: Int) -> [String] {
        let p = split.filePrefix
        let bases = ["\(p)-\(kind)-idx\(dims)-ubyte", "\(p)-\(kind).idx\(dims)-ubyte"]
        return bases.flatMap { [$0, $0 + ".gz"] }
    }

    static func find(in folder: String, candidates: [String], what: String) throws -> String {
        for name in candidates {
            let path = (folder as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw DataError(.missingFile, path: folder,
                        "no \(what) file: looked for \(candidates.joined(separator: ", "))")
    }
}

/// The data sets the project knows by name.
public enum DatasetName: String, CaseIterable, Sendable {
    /// 5,000 real MNIST digits, written by `scripts/fetch_mnist.py` (run by `scripts/setup.sh`).
    case mnist
    /// Fashion-MNIST, from the Debian package `dataset-fashion-mnist`.
    case fashionMnist = "fashion-mnist"

    /// mnist: `$RINGGAN_DATA/mnist-5k`, or `data/mnist-5k` relative to the current directory;
    /// fashion-mnist: `/usr/share/datasets/fashion-mnist`.
    public var defaultFolder: String {
        switch self {
        case .mnist:
            let root = ProcessInfo.processInfo.environment["RINGGAN_DATA"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
            return (root as NSString).appendingPathComponent("mnist-5k")
        case .fashionMnist:
            return "/usr/share/datasets/fashion-mnist"
        }
    }

    /// How to get the data when the folder is missing.
    public var howToGet: String {
        switch self {
        case .mnist: return "run scripts/setup.sh (or python3 scripts/fetch_mnist.py --out \(defaultFolder))"
        case .fashionMnist: return "install the Debian package dataset-fashion-mnist (scripts/setup.sh does)"
        }
    }

    /// Loads `split` from `folder` (default: `defaultFolder`); a missing default folder or file
    /// gives an error that says how to get the data.
    public func load(split: Split, folder: String? = nil) throws -> ImageDataset {
        do {
            return try ImageDataset.load(folder: folder ?? defaultFolder, split: split)
        } catch let e as DataError where e.kind == .missingFile && folder == nil {
            throw DataError(e.kind, path: e.path, "\(e.problem); to get \(rawValue), \(howToGet)")
        }
    }
}
