import Foundation

/// SwiGLU forward: `out = silu(gate) * up`, silu(g) = g·σ(g).
///
/// - out, gate, up: n elements (out may alias gate or up)
public func swigluForward(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                          _ up: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n {
        let g = gate[i]
        out[i] = g / (1 + expf(-g)) * up[i]
    }
}
