import ArgumentParser
import Datasets
import Foundation
import GAN
import NN
import Telemetry
import Tensors
import TrainingCLI

struct TrainClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-classifier",
        abstract: "Train the digit classifier whose features FID uses, and report its held-out accuracy.")
    @Option(help: "Dataset (its train split trains, its test split measures).") var dataset: String = "mnist"
    @Option(help: "A standard MNIST-format folder instead of the dataset's default.") var data: String?
    @Option(parsing: .unconditional, help: "Epochs.") var epochs: Int = 4
    @Option(parsing: .unconditional, help: "Use only the first N training images (quick checks).") var maxTrain: Int?
    @Option(parsing: .unconditional, help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Output (default: data/classifier-<dataset>.safetensors).") var out: String?
    @Flag(help: "Print one JSON line per step and a JSON result line instead of the progress display.") var json = false
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.oneOf("--dataset", dataset, DatasetName.allCases.map { $0.rawValue })
        try FlagCheck.range("--epochs", epochs, 1...1000)
        try FlagCheck.atLeast("--max-train", maxTrain, 64, "the classifier trains on batches of 64")
    }

    func run() throws {
        let log = logging.bootstrap("gan.classifier")
        guard let name = DatasetName(rawValue: dataset) else { throw ValidationError("unknown --dataset '\(dataset)'") }
        let train: ImageDataset, test: ImageDataset
        do {
            let full = try name.load(split: .train, folder: data)
            let n = min(maxTrain ?? full.count, full.count)
            train = ImageDataset(pixels: Array(full.pixels[0..<(n * full.height * full.width)]), count: n, height: full.height,
                                 width: full.width, labels: Array(full.labels[0..<n]), source: full.source)
            test = try name.load(split: .test, folder: data)
        } catch { fail("\(error)") }
        var rng = RandomGenerator(seed: seed, stream: 0xC1)
        let clf = DigitClassifier(rng: &rng)
        guard train.count >= 64 else { fail("the classifier trains on batches of 64; \(train.count) training images are too few") }
        log.info("training the classifier on \(train.count) \(dataset) images for \(epochs) epochs")
        let progress = Progress(total: epochs * (train.count / 64), label: "classifier")
        let acc = try clf.fit(train: train, test: test, epochs: epochs, seed: seed) { s, total, loss in
            if json {
                print(String(format: "{\"step\":%d,\"steps\":%d,\"loss\":%.5f}", s, total, loss))
            } else {
                progress.update(s, [("loss", String(format: "%.4f", loss))])
            }
        }
        if !json { progress.finish() }
        let o = out ?? CheckpointEvaluation.defaultClassifierPath(dataset)
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: o).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        try Safetensors.write(clf.stateDict().map { (name: $0.0, tensor: $0.1) },
                              metadata: ["accuracy": String(acc), "dataset": dataset, "train": String(train.count),
                                         "test": String(test.count)], to: o)
        if json {
            let obj: [String: Any] = ["accuracy": acc, "dataset": dataset, "train": train.count, "test": test.count, "out": o]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "held-out accuracy %.2f%% on %d %@ test images; wrote %@", acc * 100, test.count, dataset, o))
        }
    }
}
