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
