import Foundation

/// SwiGLU forward: `out = silu(gate) · up`, silu(g) = g·σ(g).
///
/// - out, gate, up: n elements (out may alias gate or up)
public func swigluForward<S: KernelScalar>(_ out: UnsafeMutablePointer<S>, _ gate: UnsafePointer<S>,
                                           _ up: UnsafePointer<S>, count n: Int) {
    for i in 0..<n {
        let g = gate[i]
        out[i] = g / (1 + S.exponential(-g)) * up[i]
    }
}

/// SwiGLU backward: d_up = dout·silu(g), d_gate = dout·up·σ(g)·(1 + g·(1 − σ(g))).
///
/// - dgate, dup: n elements, overwritten (either may alias dout)
/// - dout, gate, up: n elements, the forward's inputs
public func swigluBackward<S: KernelScalar>(_ dgate: UnsafeMutablePointer<S>, _ dup: UnsafeMutablePointer<S>,
                                            _ dout: UnsafePointer<S>, _ gate: UnsafePointer<S>,
                                            _ up: UnsafePointer<S>, count n: Int) {
    for i in 0..<n {
        let g = gate[i], u = up[i], d = dout[i]
        let sg = 1 / (1 + S.exponential(-g))
        dgate[i] = d * u * sg * (1 + g * (1 - sg))
        dup[i] = d * g * sg
    }
}
