import ArgumentParser
import Foundation
import GAN
import TrainingCLI

/// `gan verify CKPT`: the checkpoint reads back whole (magic, version, CRC, header, every
/// tensor inside the data), as `gan train --resume` would read it.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that a checkpoint reads back whole (magic, version, CRC, header, tensors).",
        discussion: "Exit status: 0 it reads back (its step, tensors and values are printed); 1 it does not (the reason is printed).")
    @Argument(help: "The checkpoint (.rgan).") var checkpoint: String
    @OptionGroup var logging: LogOptions

    func run() throws {
        _ = logging.bootstrap("gan")
        do {
            let c = try Checkpoint.read(path: checkpoint)
            print("verify: \(checkpoint): step \(c.step), \(c.tensors.count) tensors, \(c.valueCount) values, CRC ok")
        } catch {
            print("verify: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `gan compare A B`: two checkpoints of the same run at the same point, byte for byte.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two checkpoints: the same step, config, data position and tensors, bit for bit.",
        discussion: """
        Exit status: 0 identical; 1 different (what differs is printed: the step, the config's \
        fields, the data position, tensor names, shapes, and how many values of which tensors \
        and by how much); 2 either does not read back (the reason is printed).
        """)
    @Argument(help: "The first checkpoint (.rgan).") var a: String
    @Argument(help: "The second checkpoint (.rgan).") var b: String
    @Option(name: .customLong("ignore-config"), parsing: .unconditionalSingleValue,
            help: "A config field not to compare (its JSON key, as `gan compare` names it; repeatable), e.g. dataDir for the same run reading its digits from another path.")
    var ignoreConfig: [String] = []
    @OptionGroup var logging: LogOptions

    func validate() throws {
        let known = Set(Mirror(reflecting: GANConfig()).children.compactMap(\.label))   // the JSON keys (no custom CodingKeys)
        for f in ignoreConfig where !known.contains(f) {
            throw ValidationError("--ignore-config '\(f)': not a config field (one of \(known.sorted().joined(separator: ", ")))")
        }
    }

    func run() throws {
        _ = logging.bootstrap("gan")
        let ca: Checkpoint, cb: Checkpoint
        do { (ca, cb) = (try Checkpoint.read(path: a), try Checkpoint.read(path: b)) } catch {
            print("compare: \(error)")
            throw ExitCode(2)
        }
        let problems = ca.differences(from: cb, ignoring: Set(ignoreConfig))
        guard problems.isEmpty else {
            print("compare: DIFFERENT: " + problems.joined(separator: "; "))
            throw ExitCode(1)
        }
        let config = ignoreConfig.isEmpty ? "same config" : "same config but \(ignoreConfig.joined(separator: ", "))"
        print("compare: identical: step \(ca.step), \(ca.tensors.count) tensors (\(ca.valueCount) values) byte for byte, \(config) and sampler")
    }
}
