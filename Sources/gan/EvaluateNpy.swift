import Datasets
import Foundation
import GAN
import Telemetry
import Tensors

extension Evaluate {
    /// `gan evaluate --npy FILE`: the same classifier, reference and floor as a checkpoint's
    /// evaluation, for images made elsewhere (bench/quality_5min.py scores PyTorch's samples so).
    func evaluateArray(_ file: String, log: Logger) {
        let images: Tensor
        do { images = try FIDEvaluator.sampleImages(try Npy.read(path: file), name: file) } catch { fail("\(error)") }
        let n = images.shape[0]
        var config = GANConfig()
        config.dataset = dataset
        let cp = classifierPath(dataset: dataset, log: log)
        let clf: DigitClassifier
        do { clf = try ClassifierFile.load(cp, dataset: dataset) } catch { fail("\(error)") }
        let real: ImageDataset
        do { real = try loadTrainingData(config) } catch { fail("\(error)") }
        let progress = makeProgress(total: min(n, real.count) + min(n, max(real.count - n, 0)), label: "real features", json: json)
        let evaluator = FIDEvaluator(classifier: clf, dataset: real, count: n, seed: referenceSeed) { done, _ in progress.update(done) }
        progress.finish()
        let ref = evaluator.reference
        let (fid, cls) = evaluator.score(images: images)
        if json {
            let o: [String: Any] = ["npy": file, "fid": fid, "classifier_score": cls.classifierScore, "mode_entropy": cls.modeEntropy,
                                    "histogram": cls.histogram, "samples": n, "real_floor_fid": evaluator.floor,
                                    "real_floor_size": evaluator.floorSize,
                                    "reference": ["split": "train", "count": ref.indices.count, "per_class": ref.perClass, "seed": ref.seed,
                                                  "split_count": ref.splitCount, "description": ref.describe()] as [String: Any]]
            do { print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)) } catch { fail("\(error)") }
            return
        }
        print("samples \(file) (\(n) images of \(images.shape[2])x\(images.shape[3])), classifier \(cp)")
        print("reference: \(ref.describe())")
        print(String(format: "FID %.2f   (real-vs-real floor %.2f, %d images each)", fid, evaluator.floor, evaluator.floorSize))
        print(String(format: "classifier score %.3f (of 10)   mode entropy %.3f (of %.3f)", cls.classifierScore, cls.modeEntropy, Foundation.log(10.0)))
        print("predicted classes: \(cls.histogram)")
    }
}
