import Foundation
import XCTest
import Datasets
import Tensors

/// Fixtures written by the scripts in tools/fixtures (PyTorch 2.13 CPU), stored beside each test
/// target under Tests/<Target>/Fixtures.
public enum Fixtures {
    nonisolated(unsafe) private static var cache: [String: [String: Tensor]] = [:]
    public static func load(_ file: String, target: String = "TensorsTests") -> [String: Tensor] {
        let key = target + "/" + file
        if let c = cache[key] { return c }
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(target).appendingPathComponent("Fixtures").appendingPathComponent(file).path
        do {
            let t = try Safetensors.read(path: path).tensors
            cache[key] = t
            return t
        } catch {
            XCTFail("cannot load fixture \(path): \(error)")
            return [:]
        }
    }
}

extension [String: Tensor] {
    public func t(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> Tensor {
        guard let v = self[name] else {
            XCTFail("fixture tensor '\(name)' missing", file: file, line: line)
            return Tensor.zeros([1])
        }
        return v.copy()
    }
}

/// |a - b| <= atol + rtol * |b| element-wise, with the worst offender in the message.
public func assertClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-4, _ what: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    guard a.shape == b.shape || (a.count == b.count && a.count == 1) else {
        XCTFail("\(what): shape \(a.shape) != expected \(b.shape)", file: file, line: line)
        return
    }
    var worst = -1, worstExcess: Float = 0
    for i in 0..<a.count {
        let x = a.data[i], y = b.data[i]
        let excess = Swift.abs(x - y) - (atol + rtol * Swift.abs(y))
        if !x.isFinite || excess > worstExcess { worst = i; worstExcess = x.isFinite ? excess : .infinity }
    }
    if worst >= 0 {
        XCTFail("\(what): element \(worst) is \(a.data[worst]), expected \(b.data[worst]) (shape \(b.shape))",
                file: file, line: line)
    }
}

/// Sum of f(inputs) * weights in double precision, with grad mode off.
private func weightedSum(_ f: ([Tensor]) -> Tensor, _ inputs: [Tensor], _ w: Tensor) -> Double {
    withNoGrad {
        let y = f(inputs)
        var acc: Double = 0
        for i in 0..<y.count { acc += Double(y.data[i]) * Double(w.data[i]) }
        return acc
    }
}

/// Checks the gradient autograd gives for every input that requires grad against central
/// differences of sum(f(inputs) * w) for a random w. Float32 differences: eps 1e-2 by default,
/// tolerances to match.
public func gradCheck(_ name: String, _ inputs: [Tensor], eps: Float = 1e-2, atol: Float = 5e-4, rtol: Float = 3e-3,
               file: StaticString = #filePath, line: UInt = #line, _ f: @escaping ([Tensor]) -> Tensor) {
    var rng = RandomGenerator(seed: 99, stream: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) } & 0xffff))
    let probe = f(inputs)
    let w = Tensor.randn(probe.shape, generator: &rng)
    let grads = grad(of: [probe], wrt: inputs.filter { $0.requiresGrad }, gradOutputs: [w])
    var gi = 0
    for (k, x) in inputs.enumerated() where x.requiresGrad {
        let g = grads[gi]; gi += 1
        let numeric = Tensor.zeros(x.shape)
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + eps
            let plus = weightedSum(f, inputs, w)
            x.data[i] = saved - eps
            let minus = weightedSum(f, inputs, w)
            x.data[i] = saved
            numeric.data[i] = Float((plus - minus) / (2 * Double(eps)))
        }
        assertClose(g, numeric, atol: atol, rtol: rtol, "\(name): d/d input \(k)", file: file, line: line)
    }
}

/// Second-order check: h(inputs) = sum(grad(f, wrt: inputs[0], createGraph) * v) is
/// differentiated by autograd (double backward) and by central differences of its first-order
/// value, for every input that requires grad.
public func gradGradCheck(_ name: String, _ inputs: [Tensor], eps: Float = 1e-2, atol: Float = 5e-4, rtol: Float = 3e-3,
                   file: StaticString = #filePath, line: UInt = #line, _ f: @escaping ([Tensor]) -> Tensor) {
    var rng = RandomGenerator(seed: 7, stream: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) } & 0xffff))
    let x0 = inputs[0]
    precondition(x0.requiresGrad)
    let probe = f(inputs)
    let w = Tensor.randn(probe.shape, generator: &rng)
    let v = Tensor.randn(x0.shape, generator: &rng)
    // h as a differentiable function of the inputs.
    let h: ([Tensor]) -> Tensor = { ins in
        let y = f(ins)
        let gx = grad(of: [y], wrt: [ins[0]], gradOutputs: [w], createGraph: true)[0]
        return (gx * v).sum()
    }
    let hv = h(inputs)
    guard hv.requiresGrad else {
        XCTFail("\(name): the first-order gradient is not differentiable (no graph was created)", file: file, line: line)
        return
    }
    let wanted = inputs.filter { $0.requiresGrad }
    let second = grad(of: [hv], wrt: wanted)
    // h evaluated without building graphs beyond what the inner grad needs.
    func hValue() -> Double {
        let y = f(inputs)
        let gx = grad(of: [y], wrt: [x0], gradOutputs: [w], createGraph: false)[0]
        var acc: Double = 0
        for i in 0..<gx.count { acc += Double(gx.data[i]) * Double(v.data[i]) }
        return acc
    }
    var gi = 0
    for (k, x) in inputs.enumerated() where x.requiresGrad {
        let g = second[gi]; gi += 1
        let numeric = Tensor.zeros(x.shape)
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + eps
            let plus = hValue()
            x.data[i] = saved - eps
            let minus = hValue()
            x.data[i] = saved
            numeric.data[i] = Float((plus - minus) / (2 * Double(eps)))
        }
        assertClose(g, numeric, atol: atol, rtol: rtol, "\(name): second order d/d input \(k)", file: file, line: line)
    }
}

/// A tensor of given shape with values from the fixed generator, away from zero by `margin`.
public func sample(_ shape: [Int], seed: UInt64 = 1, scale: Float = 1, margin: Float = 0, positive: Bool = false,
            requiresGrad: Bool = true) -> Tensor {
    var rng = RandomGenerator(seed: seed, stream: UInt64(shape.reduce(17, { $0 &* 31 &+ $1 })))
    let t = Tensor.randn(shape, generator: &rng)
    for i in 0..<t.count {
        var v = t.data[i] * scale
        if positive { v = Swift.abs(v) + 0.2 }
        if margin > 0 && Swift.abs(v) < margin { v = v < 0 ? v - margin : v + margin }
        t.data[i] = v
    }
    t.requiresGrad = requiresGrad
    return t
}

/// A small dataset of blob images (one filled disc each), enough to train a few steps.
public func blobs(_ n: Int) -> ImageDataset {
    var g = RandomGenerator(seed: 5)
    var px = [UInt8](repeating: 0, count: n * 784)
    for i in 0..<n {
        let cx = 8 + g.int(below: 12), cy = 8 + g.int(below: 12)
        for y in 0..<28 { for x in 0..<28 where (x - cx) * (x - cx) + (y - cy) * (y - cy) < 30 { px[i * 784 + y * 28 + x] = 255 } }
    }
    return ImageDataset(pixels: px, count: n, height: 28, width: 28, labels: (0..<n).map { UInt8($0 % 10) }, source: "blobs")
}
