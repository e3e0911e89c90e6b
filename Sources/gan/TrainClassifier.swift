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
    @Option(help: "Output (default: classifier-<dataset>.safetensors in the user cache, $RINGGAN_CACHE or ~/.cache/ringgan, where gan evaluate looks after the data folder).")
    var out: String?
    @Flag(help: "Do nothing when a classifier of --dataset exists already (in the data folder or the cache); for setup scripts.")
    var ifMissing = false
    @Flag(help: "Print one JSON line per step and a JSON result line instead of the progress display.") var json = false
    @OptionGroup var logging: LogOptions

    func validate() throws {
        try FlagCheck.oneOf("--dataset", dataset, DatasetName.allCases.map { $0.rawValue })
        try FlagCheck.range("--epochs", epochs, 1...1000)
        try FlagCheck.atLeast("--max-train", maxTrain, 64, "the classifier trains on batches of 64")
        var isFolder: ObjCBool = false
        if let o = out, FileManager.default.fileExists(atPath: o, isDirectory: &isFolder), isFolder.boolValue {
            throw ValidationError("--out \(o) is a folder; give a file name (e.g. \(o)/classifier-\(dataset).safetensors)")
        }
    }

    func run() throws {
        let log = logging.bootstrap("gan.classifier")
        guard let name = DatasetName(rawValue: dataset) else { throw ValidationError("unknown --dataset '\(dataset)'") }
        if ifMissing, out == nil, let have = ClassifierFile.existing(dataset) {
            print("classifier: \(have) exists; nothing to do")
            return
        }
        log.info("training the classifier on \(dataset) images for \(epochs) epochs")
        var progress: Telemetry.Progress?
        let trained: ClassifierFile.Trained
        do {
            trained = try ClassifierFile.train(dataset: name, folder: data, epochs: epochs, maxTrain: maxTrain, seed: seed) { s, total, loss in
                if json {
                    print(String(format: "{\"step\":%d,\"steps\":%d,\"loss\":%.5f}", s, total, loss))
                } else {
                    if progress == nil { progress = Telemetry.Progress(total: total, label: "classifier") }
                    progress?.update(s, [("loss", String(format: "%.4f", loss))])
                }
            }
        } catch { fail("\(error)") }
        progress?.finish()
        let o = out ?? ClassifierFile.newPath(dataset)
        do { try ClassifierFile.write(trained, dataset: dataset, to: o) } catch { fail("\(error)") }
        let acc = trained.accuracy
        if json {
            let obj: [String: Any] = ["accuracy": acc, "dataset": dataset, "train": trained.trainCount, "test": trained.testCount, "out": o]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "held-out accuracy %.2f%% on %d %@ test images; wrote %@", acc * 100, trained.testCount, dataset, o))
        }
    }
}
