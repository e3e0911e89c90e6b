#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Element-wise ops with broadcasting. Every backward is written with Tensor ops, so it is
// differentiable again under createGraph.

// MARK: binary (broadcasting)

struct AddMap: BinaryMap { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
struct SubMap: BinaryMap { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
struct MulMap: BinaryMap { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
struct DivMap: BinaryMap { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }
struct ReluMap: UnaryMap { @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? x : 0 } }
struct LeakyMap: UnaryMap {
    let slope: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? x : x * slope }
}
/// The derivative of LeakyReLU (ReLU at slope 0): 1 or slope.
struct LeakyMaskMap: UnaryMap {
    let slope: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? 1 : slope }
}
/// g times that derivative, at input x.
struct LeakyGradMap: BinaryMap {
    let slope: Float
    @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { g * (x > 0 ? 1 : slope) }
}

public func + (a: Tensor, b: Tensor) -> Tensor {
    let out = mapBinary(a, b, "add", AddMap())
    return record(out, .add, [a, b]) { g, _, needs in
        [needs[0] ? g.sumTo(a.shape) : nil, needs[1] ? g.sumTo(b.shape) : nil]
    }
}

public func - (a: Tensor, b: Tensor) -> Tensor {
    let out = mapBinary(a, b, "sub", SubMap())
    return record(out, .sub, [a, b]) { g, _, needs in
        [needs[0] ? g.sumTo(a.shape) : nil, needs[1] ? (-g).sumTo(b.shape) : nil]
    }
}

public func * (a: Tensor, b: Tensor) -> Tensor {
    let out = mapBinary(a, b, "mul", MulMap())
    return record(out, .mul, [a, b]) { g, _, needs in
        [needs[0] ? (g * b).sumTo(a.shape) : nil, needs[1] ? (g * a).sumTo(b.shape) : nil]
    }
}

public func / (a: Tensor, b: Tensor) -> Tensor {
    let out = mapBinary(a, b, "div", DivMap())
    return record(out, .div, [a, b]) { g, y, needs in
        [needs[0] ? (g / b).sumTo(a.shape) : nil,
         needs[1] ? (-(g * y) / b).sumTo(b.shape) : nil]
    }
}

public prefix func - (x: Tensor) -> Tensor {
    let out = mapUnary(x) { -$0 }
    return record(out, .neg, [x]) { g, _, _ in [-g] }
}

// MARK: with a scalar

public func + (a: Tensor, s: Float) -> Tensor {
    let out = mapUnary(a) { $0 + s }
    return record(out, .addScalar, [a]) { g, _, _ in [g] }
}
public func + (s: Float, a: Tensor) -> Tensor { a + s }
public func - (a: Tensor, s: Float) -> Tensor { a + (-s) }

public func - (s: Float, a: Tensor) -> Tensor {
    let out = mapUnary(a) { s - $0 }
    return record(out, .rsubScalar, [a]) { g, _, _ in [-g] }
}

public func * (a: Tensor, s: Float) -> Tensor {
    let out = mapUnary(a) { $0 * s }
    return record(out, .mulScalar, [a]) { g, _, _ in [g * s] }
}
public func * (s: Float, a: Tensor) -> Tensor { a * s }
public func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

public func / (s: Float, a: Tensor) -> Tensor {
    let out = mapUnary(a) { s / $0 }
    return record(out, .rdivScalar, [a]) { g, y, _ in [-(g * y) / a] }
}

// MARK: unary

extension Tensor {
    public func exp() -> Tensor {
        let out = mapUnary(self) { libm_expf($0) }
        return record(out, .exp, [self]) { g, y, _ in [g * y] }
    }

    public func log() -> Tensor {
        let out = mapUnary(self) { libm_logf($0) }
        return record(out, .log, [self]) { g, _, _ in [g / self] }
    }

    public func sqrt() -> Tensor {
        let out = mapUnary(self) { $0.squareRoot() }
        return record(out, .sqrt, [self]) { g, y, _ in [g / (y * 2)] }
    }

    /// x ** p for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return self * self }
        let out = mapUnary(self) { libm_powf($0, p) }
        return record(out, .pow, [self]) { g, _, _ in [g * (self.pow(p - 1) * p)] }
    }

    public func squared() -> Tensor { self * self }

    public func abs() -> Tensor {
        let out = mapUnary(self) { Swift.abs($0) }
        return record(out, .abs, [self]) { g, _, _ in
            [g * mapUnary(self) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }]
        }
    }

    /// Clamps to [min, max]; the gradient passes where min <= x <= max (as PyTorch).
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        let out = mapUnary(self) { Swift.min(Swift.max($0, lo), hi) }
        return record(out, .clamp, [self]) { g, _, _ in
            [g * mapUnary(self) { $0 >= lo && $0 <= hi ? 1 : 0 }]
        }
    }

    public func relu() -> Tensor {
        let out = mapUnary(self, ReluMap())
        return record(out, .relu, [self], slopeBackward(0))
    }

    public func leakyRelu(_ slope: Float = 0.01) -> Tensor {
        let out = mapUnary(self, LeakyMap(slope: slope))
        return record(out, .leakyRelu, [self], slopeBackward(slope))
    }

    /// ReLU's (slope 0) and LeakyReLU's backward: g times 1 or slope, as one pass when no graph
    /// is recorded (the same products either way).
    private func slopeBackward(_ slope: Float) -> Node.Backward {
        { g, _, _ in Tensor.slopeGradient(g, at: self, slope) }
    }

    /// g times 1 or slope, by the sign of x (the input, or the output where slope >= 0).
    private static func slopeGradient(_ g: Tensor, at x: Tensor, _ slope: Float) -> [Tensor?] {
        if GradMode.isEnabled { return [g * mapUnary(x, LeakyMaskMap(slope: slope))] }
        return [mapBinary(g, x, "slope backward", LeakyGradMap(slope: slope))]
    }

    /// Ops whose backward never reads their own output: an activation may overwrite it.
    private static let outputUnreadInBackward: Set<Op> = [.conv2d, .convTranspose2d, .batchNorm, .add, .matmul]

    /// `relu_()` / `leaky_relu_()`, PyTorch's `inplace=True`: the result is written over this
    /// tensor's values, so the graph keeps one tensor of this size instead of two (the tutorial's
    /// models use it after every convolution, batch norm and linear layer). Done only where
    /// nothing can read the old values: this tensor is the output of an op whose backward does
    /// not read its output (a convolution, batch norm, a linear layer) while a graph is
    /// recorded, and the slope is not negative, so that the derivative can be read from the
    /// result (y > 0 exactly when x > 0). Anywhere else it is the ordinary op. As in PyTorch,
    /// the caller promises that nothing else uses this tensor afterwards (a `Sequential` layer
    /// hands it on to this activation only).
    public func leakyReluInPlace(_ slope: Float) -> Tensor {
        guard slope >= 0, GradMode.isEnabled, let node, Tensor.outputUnreadInBackward.contains(node.op) else {
            return slope == 0 ? relu() : leakyRelu(slope)
        }
        let out = Tensor(shape: shape, storage: storage, offset: offset)
        if slope == 0 {
            mapUnaryInPlace(self, ReluMap())
            return record(out, .reluInPlace, [self]) { g, y, _ in Tensor.slopeGradient(g, at: y, 0) }
        }
        mapUnaryInPlace(self, LeakyMap(slope: slope))
        return record(out, .leakyReluInPlace, [self]) { g, y, _ in Tensor.slopeGradient(g, at: y, slope) }
    }

    public func tanh() -> Tensor {
        let out = mapUnary(self) { libm_tanhf($0) }
        return record(out, .tanh, [self]) { g, y, _ in [g * (1 - y * y)] }
    }

    public func sigmoid() -> Tensor {
        let out = mapUnary(self) { stableSigmoid($0) }
        return record(out, .sigmoid, [self]) { g, y, _ in [g * (y * (1 - y))] }
    }

    /// log(1 + e^x), computed stably.
    public func softplus() -> Tensor {
        let out = mapUnary(self) { Swift.max($0, 0) + libm_log1pf(libm_expf(-Swift.abs($0))) }
        return record(out, .softplus, [self]) { g, _, _ in [g * self.sigmoid()] }
    }

    /// log(sigmoid(x)) = -softplus(-x), computed stably.
    public func logSigmoid() -> Tensor {
        let out = mapUnary(self) { Swift.min($0, 0) - libm_log1pf(libm_expf(-Swift.abs($0))) }
        return record(out, .logSigmoid, [self]) { g, _, _ in [g * (-self).sigmoid()] }
    }
}

@inline(__always) func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + libm_expf(-x)) }
    let e = libm_expf(x)
    return e / (1 + e)
}

// libm's float functions under names that do not clash with the Tensor methods.
@inline(__always) func libm_expf(_ x: Float) -> Float { expf(x) }
@inline(__always) func libm_logf(_ x: Float) -> Float { logf(x) }
@inline(__always) func libm_powf(_ x: Float, _ p: Float) -> Float { powf(x, p) }
@inline(__always) func libm_tanhf(_ x: Float) -> Float { tanhf(x) }
@inline(__always) func libm_log1pf(_ x: Float) -> Float { log1pf(x) }
