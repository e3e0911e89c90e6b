import Tensors

/// Base of every layer and model: named parameters, buffers and children in registration order,
/// named as PyTorch's `state_dict` would name them for the same structure (`main.1.running_var`).
open class Module {
    /// Training mode (batch statistics, spectral-norm power iteration) or evaluation mode.
    public private(set) var training = true

    private var parameterOrder: [String] = []
    private var parameterTable: [String: Tensor] = [:]
    private var bufferOrder: [String] = []
    private var bufferTable: [String: Tensor] = [:]
    private var childOrder: [String] = []
    private var childTable: [String: Module] = [:]

    public init() {}

    // MARK: registration

    /// Registers a trainable tensor (sets `requiresGrad`).
    public func registerParameter(_ name: String, _ t: Tensor) {
        precondition(!name.contains("."), "parameter name '\(name)' must not contain '.'")
        if parameterTable[name] == nil { parameterOrder.append(name) }
        t.requiresGrad = true
        parameterTable[name] = t
    }

    /// Registers persistent state that is not trained (running stats, spectral-norm vectors).
    public func registerBuffer(_ name: String, _ t: Tensor) {
        precondition(!name.contains("."), "buffer name '\(name)' must not contain '.'")
        if bufferTable[name] == nil { bufferOrder.append(name) }
        bufferTable[name] = t
    }

    public func removeParameter(_ name: String) {
        parameterTable[name] = nil
        parameterOrder.removeAll { $0 == name }
    }

    public func registerModule(_ name: String, _ m: Module) {
        if childTable[name] == nil { childOrder.append(name) }
        childTable[name] = m
    }

    public func parameter(_ name: String) -> Tensor {
        guard let t = parameterTable[name] else { preconditionFailure("\(type(of: self)) has no parameter '\(name)'") }
        return t
    }

    public func buffer(_ name: String) -> Tensor {
        guard let t = bufferTable[name] else { preconditionFailure("\(type(of: self)) has no buffer '\(name)'") }
        return t
    }

    public func hasParameter(_ name: String) -> Bool { parameterTable[name] != nil }

    public var children: [(String, Module)] { childOrder.map { ($0, childTable[$0]!) } }

    // MARK: traversal

    /// Parameters with dotted names, own first, then each child's, in registration order.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out = parameterOrder.map { (prefix + $0, parameterTable[$0]!) }
        for (n, c) in children { out += c.namedParameters(prefix: prefix + n + ".") }
        return out
    }

    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out = bufferOrder.map { (prefix + $0, bufferTable[$0]!) }
        for (n, c) in children { out += c.namedBuffers(prefix: prefix + n + ".") }
        return out
    }

    public var parameters: [Tensor] { namedParameters().map { $0.1 } }

    /// PyTorch's `state_dict()` order: each module's parameters, then its buffers, then children.
    public func stateDict(prefix: String = "") -> [(String, Tensor)] {
        var out = parameterOrder.map { (prefix + $0, parameterTable[$0]!) }
        out += bufferOrder.map { (prefix + $0, bufferTable[$0]!) }
        for (n, c) in children { out += c.stateDict(prefix: prefix + n + ".") }
        return out
    }

    /// This module and every descendant, depth first.
    public func modules() -> [Module] { [self] + children.flatMap { $0.1.modules() } }

    /// Replaces the tensor behind a dotted parameter name (used to move parameters into one
    /// flat buffer). The new tensor must have the same shape.
    public func replaceParameter(path: String, with t: Tensor) {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 1 {
            precondition(parameterTable[path]?.shape == t.shape, "replaceParameter: \(path) shape mismatch")
            t.requiresGrad = true
            parameterTable[path] = t
        } else {
            guard let c = childTable[parts[0]] else { preconditionFailure("replaceParameter: no child '\(parts[0])'") }
            c.replaceParameter(path: parts[1], with: t)
        }
    }

    /// Copies values from `dict` into this module's parameters and buffers (by name).
    /// Missing or unexpected keys and shape mismatches are errors naming the key.
    public func loadStateDict(_ dict: [String: Tensor], strict: Bool = true) throws {
        let mine = stateDict()
        let names = Set(mine.map { $0.0 })
        if strict {
            let missing = mine.map { $0.0 }.filter { dict[$0] == nil }
            let unexpected = dict.keys.filter { !names.contains($0) }.sorted()
            if !missing.isEmpty || !unexpected.isEmpty {
                throw StateDictError(reason: (missing.isEmpty ? "" : "missing keys: \(missing.joined(separator: ", "))")
                    + (missing.isEmpty || unexpected.isEmpty ? "" : "; ")
                    + (unexpected.isEmpty ? "" : "unexpected keys: \(unexpected.joined(separator: ", "))"))
            }
        }
        for (name, t) in mine {
            guard let src = dict[name] else { continue }
            guard src.count == t.count && (src.shape == t.shape || src.count == 1) else {
                throw StateDictError(reason: "\(name): shape \(src.shape) does not match the model's \(t.shape)")
            }
            t.assign(src)
        }
    }

    // MARK: mode and forward

    public func train(_ on: Bool = true) {
        for m in modules() { m.training = on }
    }

    public func eval() { train(false) }

    /// The single-input forward pass. Modules with other inputs (AdaIN) define their own.
    open func forward(_ x: Tensor) -> Tensor {
        preconditionFailure("\(type(of: self)) has no single-input forward")
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { forward(x) }
}

public struct StateDictError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "state dict does not fit the model: \(reason)" }
}

/// Modules applied in order; children are named "0", "1", ... as in `nn.Sequential`.
public final class Sequential: Module {
    public let layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
        for (i, l) in layers.enumerated() { registerModule(String(i), l) }
    }

    public convenience init(_ layers: Module...) { self.init(layers) }

    public override func forward(_ x: Tensor) -> Tensor {
        var h = x
        for l in layers { h = l(h) }
        return h
    }
}

/// Modules held in order, with no forward of their own; children are named "0", "1", ... as in
/// `nn.ModuleList`, so `blocks.2.weight` names the same tensor in both.
public final class ModuleList<Element: Module>: Module {
    public let elements: [Element]

    public init(_ elements: [Element]) {
        self.elements = elements
        super.init()
        for (i, m) in elements.enumerated() { registerModule(String(i), m) }
    }

    public var count: Int { elements.count }
    public subscript(i: Int) -> Element { elements[i] }
}
