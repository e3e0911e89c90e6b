import NN
import XCTest
import Tensors

/// A module against PyTorch fixtures (tools/fixtures/make_nn_fixtures.py): the state_dict's names
/// and shapes, the training-mode forward, parameter and input gradients, buffers after the
/// forward, and eval-mode outputs, under prefix `p` of the fixture file.
public struct ModuleParity {
    public let fx: [String: Tensor]
    public init(_ fx: [String: Tensor]) { self.fx = fx }

    /// Tolerance scaled to the expected tensor's magnitude.
    /// `floor` is a magnitude the absolute tolerance scales with at least (a gradient that is zero
    /// in exact arithmetic, like a Linear bias before a training BatchNorm, is rounding noise of
    /// the size of the other gradients times float epsilon).
    public func close(_ a: Tensor, _ b: Tensor, _ what: String, rtol: Float = 2e-3, floor: Float = 1e-3,
               file: StaticString = #filePath, line: UInt = #line) {
        let scale = b.toArray().map { Swift.abs($0) }.max() ?? 0
        assertClose(a, b, atol: 1e-5 * max(scale, floor) + 1e-7, rtol: rtol, what, file: file, line: line)
    }

    public func check(_ p: String, _ m: Module, forward: (Module, Tensor) -> Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        // The state dict has exactly PyTorch's keys, in PyTorch's order of parameters.
        let sdKeys = fx.keys.filter { $0.hasPrefix(p + ".sd.") }.map { String($0.dropFirst(p.count + 4)) }
        XCTAssertEqual(Set(m.stateDict().map { $0.0 }), Set(sdKeys), "\(p): state_dict keys", file: file, line: line)
        var sd: [String: Tensor] = [:]
        for k in sdKeys { sd[k] = fx.t("\(p).sd.\(k)") }
        try m.loadStateDict(sd)
        // Eval output from the stored state (no batch stats, no power iteration).
        if fx["\(p).out_eval_sd"] != nil {
            m.eval()
            close(withNoGrad { forward(m, fx.t("\(p).in")) }, fx.t("\(p).out_eval_sd"), "\(p) eval output from the stored state",
                  rtol: 5e-3, file: file, line: line)
            m.train()
        }
        let x = fx.t("\(p).in")
        x.requiresGrad = true
        let out = forward(m, x)
        close(out, fx.t("\(p).out"), "\(p) forward", file: file, line: line)
        let params = m.namedParameters()
        let grads = grad(of: [out], wrt: params.map { $0.1 } + [x], gradOutputs: [fx.t("\(p).gout")])
        let gradScale = params.map { fx.t("\(p).grad.\($0.0)").toArray().map { Swift.abs($0) }.max() ?? 0 }.max() ?? 0
        for (i, (name, _)) in params.enumerated() {
            close(grads[i], fx.t("\(p).grad.\(name)"), "\(p) grad \(name)", floor: gradScale, file: file, line: line)
        }
        close(grads.last!, fx.t("\(p).gin"), "\(p) input grad", file: file, line: line)
        for (name, b) in m.namedBuffers() {
            close(b, fx.t("\(p).after.\(name)"), "\(p) buffer \(name) after the forward", file: file, line: line)
        }
        m.eval()
        close(withNoGrad { forward(m, x) }, fx.t("\(p).out_eval"), "\(p) eval output", file: file, line: line)
    }
}
