import Datasets
import Foundation
import NN
import Tensors

/// The MNIST classifier whose features FID uses: two 3x3 conv + ReLU + 2x average-pool stages
/// (32 and 64 channels), a 128-unit hidden layer (the features), 10 logits. Input [N, 1, 28, 28]
/// in [-1, 1].
public final class DigitClassifier: Module {
    public let body: Sequential
    public let head: Linear

    public init(rng: inout RandomGenerator) {
        body = Sequential([
            Conv2d(1, 32, kernelSize: 3, padding: 1, rng: &rng), ReLU(), AvgPool(2),
            Conv2d(32, 64, kernelSize: 3, padding: 1, rng: &rng), ReLU(), AvgPool(2),
            Flatten(), Linear(64 * 7 * 7, 128, rng: &rng), ReLU(),
        ])
        head = Linear(128, 10, rng: &rng)
        super.init()
        registerModule("body", body)
        registerModule("head", head)
    }

    public func features(_ x: Tensor) -> Tensor { body(to28(x)) }
    public override func forward(_ x: Tensor) -> Tensor { head(features(x)) }

    /// Brings generated images to the classifier's 28x28: 32x32 (MNIST padded by 2) is cropped
    /// back; 64x64 is average-pooled to 32 first; 28x28 passes through.
    public func to28(_ x: Tensor) -> Tensor {
        var h = x
        while h.shape[2] >= 56 { h = h.avgPool(2) }
        if h.shape[2] == 28 { return h }
        precondition(h.shape[2] == 32 && h.shape[3] == 32, "classifier: cannot bring \(x.shape) to 28x28")
        return h.narrow(2, 2, 28).narrow(3, 2, 28)
    }

    /// Features of `images` in batches, without recording.
    public func featureRows(_ images: Tensor, batch: Int = 250) -> Tensor {
        eval()
        return withNoGrad {
            concat(stride(from: 0, to: images.shape[0], by: batch).map { s in
                features(images.narrow(0, s, min(batch, images.shape[0] - s)))
            }, dim: 0)
        }
    }

    public func probabilities(_ images: Tensor, batch: Int = 250) -> Tensor {
        eval()
        return withNoGrad {
            concat(stride(from: 0, to: images.shape[0], by: batch).map { s in
                softmax(self(images.narrow(0, s, min(batch, images.shape[0] - s))))
            }, dim: 0)
        }
    }

    /// Trains on `train` for `epochs` (Adam 1e-3, batch 64) and returns the accuracy on `test`.
    /// Throws an `EpochSamplerError` when `train` has fewer than 64 images.
    public func fit(train: ImageDataset, test: ImageDataset, epochs: Int, seed: UInt64,
                    progress: ((Int, Int, Float) -> Void)? = nil) throws -> Double {
        let group = ParameterGroup(self)
        let opt = Adam(group, lr: 1e-3)
        var sampler = try EpochSampler(count: train.count, batchSize: 64, seed: seed)
        let steps = epochs * sampler.batchesPerEpoch
        self.train()   // the module's mode (`train` here is the data set)
        for s in 0..<steps {
            let idx = sampler.next()
            let x = batch(train, indices: idx, size: 28)
            group.zeroGrad()
            let loss = crossEntropy(self(x), labels: idx.map { Int(train.labels[$0]) })
            loss.backward()
            opt.step()
            progress?(s + 1, steps, loss.item)
        }
        return accuracy(test)
    }

    public func accuracy(_ ds: ImageDataset) -> Double {
        let x = batch(ds, indices: Array(0..<ds.count), size: 28)
        let p = probabilities(x)
        var correct = 0
        for i in 0..<ds.count {
            var best = 0
            for j in 0..<10 where p.data[i * 10 + j] > p.data[i * 10 + best] { best = j }
            if best == Int(ds.labels[i]) { correct += 1 }
        }
        return Double(correct) / Double(max(ds.count, 1))
    }
}

/// Where the digit classifier FID uses lives, and how it is made when it is missing.
///
/// A classifier is looked for in the data folder (`classifier-<dataset>.safetensors`, where
/// earlier versions and `gan train-classifier --out data/...` put it), then in the user's cache
/// (`$RINGGAN_CACHE`, else `$XDG_CACHE_HOME/ringgan`, else `~/.cache/ringgan`). A new one is
/// written to the cache, which a user can always write, never into the source tree or an
/// install prefix.
public enum ClassifierFile {
    public static func fileName(_ dataset: String) -> String { "classifier-\(dataset).safetensors" }

    /// The user's cache folder for made files.
    public static func cacheFolder(environment env: [String: String] = DataRoot.environment) -> String {
        if let v = env["RINGGAN_CACHE"], !v.isEmpty { return v }
        if let v = env["XDG_CACHE_HOME"], !v.isEmpty { return (v as NSString).appendingPathComponent("ringgan") }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSTemporaryDirectory()
        return (home as NSString).appendingPathComponent(".cache/ringgan")
    }

    /// Where a newly trained classifier goes: the cache.
    public static func newPath(_ dataset: String, environment env: [String: String] = DataRoot.environment) -> String {
        (cacheFolder(environment: env) as NSString).appendingPathComponent(fileName(dataset))
    }

    /// The places looked at, in order.
    public static func candidates(_ dataset: String, environment env: [String: String] = DataRoot.environment) -> [String] {
        [(DataRoot.path as NSString).appendingPathComponent(fileName(dataset)), newPath(dataset, environment: env)]
    }

    /// The first classifier file that exists, or nil.
    public static func existing(_ dataset: String, environment env: [String: String] = DataRoot.environment) -> String? {
        candidates(dataset, environment: env).first { FileManager.default.fileExists(atPath: $0) }
    }

    /// What training reports.
    public struct Trained {
        public let classifier: DigitClassifier
        public let accuracy: Double
        public let trainCount: Int
        public let testCount: Int
    }

    /// Trains the classifier of `dataset` (its train split, or the first `maxTrain` images of it,
    /// `epochs` epochs, `seed`) and measures it on the test split.
    public static func train(dataset: DatasetName, folder: String? = nil, epochs: Int = 4, maxTrain: Int? = nil, seed: UInt64 = 0,
                             progress: ((Int, Int, Float) -> Void)? = nil) throws -> Trained {
        let full = try dataset.load(split: .train, folder: folder)
        let n = min(maxTrain ?? full.count, full.count)
        let train = ImageDataset(pixels: Array(full.pixels[0..<(n * full.height * full.width)]), count: n, height: full.height,
                                 width: full.width, labels: Array(full.labels[0..<n]), source: full.source)
        let test = try dataset.load(split: .test, folder: folder)
        guard train.count >= 64 else {
            throw SessionError("the classifier trains on batches of 64; \(train.count) training images are too few")
        }
        var rng = RandomGenerator(seed: seed, stream: 0xC1)
        let clf = DigitClassifier(rng: &rng)
        let acc = try clf.fit(train: train, test: test, epochs: epochs, seed: seed, progress: progress)
        return Trained(classifier: clf, accuracy: acc, trainCount: train.count, testCount: test.count)
    }

    /// Writes `trained` to `path` (folders made, atomically), with what it was trained on.
    public static func write(_ trained: Trained, dataset: String, to path: String) throws {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try Safetensors.write(trained.classifier.stateDict().map { (name: $0.0, tensor: $0.1) },
                              metadata: ["accuracy": String(trained.accuracy), "dataset": dataset, "train": String(trained.trainCount),
                                         "test": String(trained.testCount)], to: path)
    }

    /// Loads the classifier at `path`.
    public static func load(_ path: String, dataset: String) throws -> DigitClassifier {
        var rng = RandomGenerator(seed: 0)
        let clf = DigitClassifier(rng: &rng)
        do {
            try clf.loadStateDict(try Safetensors.read(path: path).tensors)
        } catch { throw SessionError("\(error) (train one with: gan train-classifier --dataset \(dataset))") }
        return clf
    }
}
