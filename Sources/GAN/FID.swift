import Datasets
import Foundation
import NN
import Tensors

/// The real images FID compares against: a seeded draw stratified by class, so every class is
/// represented in its proportion of the split (MNIST-style files are often stored in class
/// order, where "the first N" would be a few classes only). A second set of the same size,
/// disjoint from the reference and drawn the same way, gives the real-vs-real floor: the FID two
/// real samples of this size score against each other, which no generator can be expected to
/// beat at that sample size.
public struct RealReference: Sendable, Equatable {
    /// The seed of the draw `gan evaluate` uses unless told otherwise.
    public static let defaultSeed: UInt64 = 20_240_601

    /// Dataset indices of the reference set (ascending).
    public let indices: [Int]
    /// Dataset indices of the disjoint comparison set for the floor (ascending); empty when the
    /// split has no images left over (then the floor compares two halves of the reference).
    public let floorIndices: [Int]
    /// Images per class in the reference, indexed by label (0 for labels that do not occur).
    public let perClass: [Int]
    public let seed: UInt64
    /// Images in the split the sets were drawn from.
    public let splitCount: Int

    /// Draws `count` reference images (at most the whole split) and a disjoint floor set of
    /// `min(count, split - count)` from `labels`, each stratified by class.
    public init(labels: [UInt8], count: Int, seed: UInt64 = RealReference.defaultSeed) {
        precondition(count >= 1, "RealReference: count must be at least 1")
        let n = min(count, labels.count)
        var groups: [[Int]] = Array(repeating: [], count: 256)
        for (i, l) in labels.enumerated() { groups[Int(l)].append(i) }
        // One seeded shuffle per class; the reference takes each class's first quota, the floor
        // set the next one, so the two never overlap.
        var rng = RandomGenerator(seed: seed, stream: 0xF1D)
        for c in 0..<256 where !groups[c].isEmpty {
            let p = rng.permutation(groups[c].count)
            groups[c] = p.map { groups[c][$0] }
        }
        let sizes = groups.map { $0.count }
        let quota = RealReference.allocate(n, over: sizes)
        let rest = zip(sizes, quota).map { $0 - $1 }
        let m = min(n, labels.count - n)
        let floorQuota = RealReference.allocate(m, over: rest)
        var ref: [Int] = [], flo: [Int] = []
        for c in 0..<256 {
            ref += groups[c][0..<quota[c]]
            flo += groups[c][quota[c]..<(quota[c] + floorQuota[c])]
        }
        indices = ref.sorted()
        floorIndices = flo.sorted()
        let maxLabel = labels.max().map { Int($0) } ?? 0
        perClass = Array(quota[0...maxLabel])
        self.seed = seed
        splitCount = labels.count
    }

    /// Splits `total` over groups of `sizes` in proportion to their sizes (largest remainder,
    /// ties to the lower group), never more than a group holds.
    public static func allocate(_ total: Int, over sizes: [Int]) -> [Int] {
        let all = sizes.reduce(0, +)
        precondition(total <= all, "allocate: \(total) of \(all)")
        guard total > 0 else { return sizes.map { _ in 0 } }
        var q = sizes.map { $0 * total / all }
        var left = total - q.reduce(0, +)
        // Fractional parts, largest first.
        let order = sizes.indices.sorted { a, b in
            let fa = sizes[a] * total % all, fb = sizes[b] * total % all
            return fa != fb ? fa > fb : a < b
        }
        for g in order where left > 0 && q[g] < sizes[g] { q[g] += 1; left -= 1 }
        return q
    }

    /// "2000 train images, 200 per class, seed S" (or the range of per-class counts).
    public func describe(split: String = "train") -> String {
        let present = perClass.filter { $0 > 0 }
        let lo = present.min() ?? 0, hi = present.max() ?? 0
        let per = lo == hi ? "\(lo) per class" : "\(lo)-\(hi) per class"
        let whole = indices.count == splitCount ? " (the whole split)" : " of \(splitCount)"
        return "\(indices.count)\(whole) \(split) images, \(per) over \(present.count) classes, stratified draw with seed \(seed)"
    }
}

/// FID on the features of our digit classifier against a fixed real reference, with the
/// real-vs-real floor beside it: `gan evaluate`'s pipeline.
public final class FIDEvaluator {
    public let classifier: DigitClassifier
    public let reference: RealReference
    public let referenceStatistics: FeatureStatistics
    /// FID of the disjoint real set against the reference (or, when the split has nothing left,
    /// of the reference's two halves against each other).
    public let floor: Double
    /// Images in each of the two sets the floor compared.
    public let floorSize: Int

    /// Features of `dataset`'s reference images (and of the floor set), in batches of 250;
    /// `progress(done, total)` after each batch.
    public init(classifier: DigitClassifier, dataset: ImageDataset, count: Int, seed: UInt64 = RealReference.defaultSeed,
                progress: ((Int, Int) -> Void)? = nil) {
        self.classifier = classifier
        let ref = RealReference(labels: dataset.labels, count: count, seed: seed)
        reference = ref
        let total = ref.indices.count + ref.floorIndices.count
        var done = 0
        func features(_ idx: [Int]) -> Tensor {
            var parts: [Tensor] = []
            for s in stride(from: 0, to: idx.count, by: 250) {
                let chunk = Array(idx[s..<min(s + 250, idx.count)])
                parts.append(classifier.featureRows(batch(dataset, indices: chunk, size: 28)))
                done += chunk.count
                progress?(done, total)
            }
            return concat(parts, dim: 0)
        }
        let refFeatures = features(ref.indices)
        referenceStatistics = FeatureStatistics(features: refFeatures)
        if ref.floorIndices.count >= 2 {
            floor = frechetDistance(FeatureStatistics(features: features(ref.floorIndices)), referenceStatistics)
            floorSize = ref.floorIndices.count
        } else {
            // No image left over: the two halves of the reference (each half the size).
            let h = ref.indices.count / 2
            if h >= 2 {
                floor = frechetDistance(FeatureStatistics(features: refFeatures.narrow(0, 0, h)),
                                        FeatureStatistics(features: refFeatures.narrow(0, h, h)))
            } else {
                floor = .nan
            }
            floorSize = h
        }
    }

    /// FID of `images` ([N, 1, S, S] in [-1, 1], N >= 2) against the reference.
    public func fid(images: Tensor) -> Double {
        frechetDistance(FeatureStatistics(features: classifier.featureRows(images)), referenceStatistics)
    }

    /// FID of feature rows already computed.
    public func fid(features: Tensor) -> Double {
        frechetDistance(FeatureStatistics(features: features), referenceStatistics)
    }

    /// FID and class-distribution scores of generated images given as an array
    /// ([N, 1, S, S] in [-1, 1]; `sampleImages(_:)` checks one read from a file).
    public func score(images: Tensor) -> (fid: Double, classes: ClassDistributionScores) {
        (fid(features: classifier.featureRows(images)), classDistributionScores(probabilities: classifier.probabilities(images)))
    }

    /// Checks generated images read from a file (`gan evaluate --npy`, e.g. samples exported
    /// from PyTorch) and returns them as [N, 1, S, S]: the array is [N, 1, S, S] or [N, S, S],
    /// S is 28, 32 or 64 (as the models make them: 32 is MNIST padded by 2, 64 resized), N >= 2,
    /// every value finite and in [-1, 1] (a generator's tanh range; images in [0, 1] or [0, 255]
    /// are refused, not silently rescaled). Throws a message naming what is wrong.
    public static func sampleImages(_ t: Tensor, name: String) throws -> Tensor {
        func fail(_ r: String) -> SessionError { SessionError("\(name): \(r)") }
        var shape = t.shape
        if shape.count == 3 { shape.insert(1, at: 1) }
        guard shape.count == 4, shape[1] == 1, shape[2] == shape[3], [28, 32, 64].contains(shape[2]) else {
            throw fail("shape \(t.shape): expected [N, 1, S, S] or [N, S, S] with S 28, 32 or 64")
        }
        guard shape[0] >= 2 else { throw fail("\(shape[0]) image(s); FID needs at least 2") }
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<t.count {
            let v = t.data[i]
            guard v.isFinite else { throw fail("value \(v) at flat index \(i) is not finite") }
            lo = min(lo, v); hi = max(hi, v)
        }
        guard lo >= -1.0001, hi <= 1.0001 else {
            throw fail("values span [\(lo), \(hi)]; generated images must be in [-1, 1] (x * 2 - 1 for [0, 1] images)")
        }
        return t.reshape(shape)
    }

    /// FID and class-distribution scores of `count` samples of `models`' generator (eval mode),
    /// latents from `seed` (purpose fixedNoise, step 2), in batches of 250.
    public func score(_ models: GANModels, count: Int, seed: UInt64, progress: ((Int, Int) -> Void)? = nil)
        -> (fid: Double, classes: ClassDistributionScores)
    {
        var feats: [Tensor] = [], probs: [Tensor] = []
        for s in stride(from: 0, to: count, by: 250) {
            let z = latents(seed: seed, .fixedNoise, step: 2, indices: Array(s..<min(s + 250, count)), dim: models.config.latentDim)
            let fake = models.sample(z)
            feats.append(classifier.featureRows(fake))
            probs.append(classifier.probabilities(fake))
            progress?(min(s + 250, count), count)
        }
        return (fid(features: concat(feats, dim: 0)), classDistributionScores(probabilities: concat(probs, dim: 0)))
    }
}
