import Foundation
import Tensors

extension GANConfig {
    /// The config's fields as text, by their JSON keys (as checkpoints store them).
    public var fieldValues: [String: String] {
        guard let data = try? JSONEncoder().encode(self),
              let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [:] }
        return obj.mapValues { "\($0)" }
    }

    /// The fields whose values differ between `a` and `b` (their JSON keys), sorted.
    public static func differingFields(_ a: GANConfig, _ b: GANConfig) -> [String] {
        differingFields(a.fieldValues, b.fieldValues)
    }

    /// The keys whose values differ between two configs' `fieldValues`, sorted.
    public static func differingFields(_ fa: [String: String], _ fb: [String: String]) -> [String] {
        Set(fa.keys).union(fb.keys).sorted().filter { fa[$0] != fb[$0] }
    }
}

extension Checkpoint {
    /// Every value of every tensor.
    public var valueCount: Int { tensors.reduce(0) { $0 + $1.tensor.count } }

    /// What differs between this checkpoint and `other`: the step, the config (its fields), the
    /// data position, the tensors' names and shapes, and their values bit for bit (a NaN equals
    /// only the same NaN). Empty when they are the same run at the same point, byte for byte.
    /// Config fields named in `ignoring` (JSON keys, such as `data` for the same run read from
    /// another path) are not compared.
    public func differences(from other: Checkpoint, ignoring: Set<String> = []) -> [String] {
        var out: [String] = []
        if step != other.step { out.append("step \(step) vs \(other.step)") }
        let fields = GANConfig.differingFields(config, other.config).filter { !ignoring.contains($0) }
        if !fields.isEmpty { out.append("config differs in \(fields)") }
        if sampler != other.sampler { out.append("data sampler state differs") }
        let mine = Set(tensors.map(\.name)), theirs = Set(other.tensors.map(\.name))
        let onlyHere = mine.subtracting(theirs).sorted(), onlyThere = theirs.subtracting(mine).sorted()
        if !onlyHere.isEmpty || !onlyThere.isEmpty {
            out.append("tensor names differ: only in A \(onlyHere.prefix(5)), only in B \(onlyThere.prefix(5))")
        }
        var differ: [String] = []
        for t in tensors {
            guard let b = other.tensor(t.name) else { continue }
            if let d = Checkpoint.valueDifference(t.name, t.tensor, b) { differ.append(d) }
        }
        if !differ.isEmpty {
            out.append("\(differ.count) of \(tensors.count) tensors differ: " + differ.prefix(4).joined(separator: "; ") + (differ.count > 4 ? " ..." : ""))
        }
        return out
    }

    /// How two tensors of one name differ (shape, or how many values and by how much), or nil
    /// when they are the same bits.
    static func valueDifference(_ name: String, _ a: Tensor, _ b: Tensor) -> String? {
        guard a.shape == b.shape else { return "\(name) shape \(a.shape) vs \(b.shape)" }
        let x = a.toArray(), y = b.toArray()
        var count = 0
        var worst: Float = 0
        for i in x.indices where x[i].bitPattern != y[i].bitPattern {
            count += 1
            worst = max(worst, abs(x[i] - y[i]))
        }
        guard count > 0 else { return nil }
        return "\(name) (\(count) of \(x.count) values, max |diff| \(String(format: "%.3g", worst)))"
    }
}
