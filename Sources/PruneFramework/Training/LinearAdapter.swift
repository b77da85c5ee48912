import Foundation

/// A small trainable path on one frozen linear layer (LoRA, SPP): the training pass calls its
/// forward after the layer's own x·Wᵀ and its backward after the layer's own, handing it the frozen
/// weight W; an optimiser updates its parameter tensors from their gradients; the training merges it
/// into W at the end, so the exported model has no adapter.
public protocol LinearAdapter<Scalar>: AnyObject {
    associatedtype Scalar: KernelScalar
    /// False after training: no dropout.
    var training: Bool { get set }
    /// Number of trainable values.
    var parameterCount: Int { get }
    /// y (m × n) += the adapter's path for input x (m × k), W the n × k weight it sits on; keeps what
    /// the backward needs.
    func forward(_ y: UnsafeMutablePointer<Scalar>, _ x: UnsafePointer<Scalar>, weight: UnsafePointer<Scalar>, m: Int)
    /// Given dy of the last forward: dx (m × k) += the path's input gradient; the parameters'
    /// gradients accumulate.
    func backward(dx: UnsafeMutablePointer<Scalar>, dy: UnsafePointer<Scalar>, weight: UnsafePointer<Scalar>, m: Int)
    func zeroGradients()
    /// Calls `body` with each parameter tensor and its gradient, in a fixed order.
    func visitParameters(_ body: (inout [Scalar], [Scalar]) -> Void)
    /// Calls `body` with each gradient, in `visitParameters` order (a data-parallel training adds
    /// them over the ranks).
    func visitGradients(_ body: (inout [Scalar]) throws -> Void) rethrows
    /// Moves the dropout stream on as a training forward of `m` rows would, for a micro-batch that
    /// another rank runs, so that every rank count draws the same masks.
    func skipDropout(rows m: Int)
    /// The merge as a change of rows of W (`ParameterStore.update`): given rows `r` of W in `w`,
    /// turns them into the merged rows. Holds a copy of the parameters as they are now.
    func mergeRows() -> @Sendable (_ r: Range<Int>, _ w: UnsafeMutablePointer<Scalar>) -> Void
}

extension LinearAdapter {
    /// Merges the adapter into the whole n × k weight `w` in place.
    public func merge(into w: UnsafeMutablePointer<Scalar>, rows n: Int) {
        mergeRows()(0..<n, w)
    }
}

extension LinearAdapter where Scalar == Float {
    /// The sum of squared gradients, in Double.
    func gradientNormSquared() -> Double {
        var s = 0.0
        visitParameters { _, g in for v in g { s += Double(v * v) } }
        return s
    }
}

/// An r × k matrix uniform in ±1/√k (PEFT's initialisation of LoRA's A, also SPP's row matrix).
func adapterRowMatrix<E: KernelScalar>(rank r: Int, inFeatures k: Int, rng: inout SplitMix64) -> [E] {
    let bound = 1 / Double(k).squareRoot()
    return (0..<(r * k)).map { _ in E(bound * Double(rng.nextSymmetric())) }
}

/// An adapter's copy of its input, with inverted dropout applied while training: `values` is the
/// dropped-out input x_d, `mask` the factor each element got (empty without dropout).
struct DroppedInput<E: KernelScalar> {
    var values: [E] = []
    var mask: [E] = []

    @_specialize(where E == Float)
    mutating func save(_ x: UnsafePointer<E>, count: Int, dropout: Double, rng: inout SplitMix64) {
        values = Array(UnsafeBufferPointer(start: x, count: count))
        guard dropout > 0 else { return mask = [] }
        let keep = 1 - dropout, inv = E(1 / keep)
        mask = (0..<count).map { _ in Double(rng.nextUnit()) < keep ? inv : 0 }
        for i in 0..<count { values[i] *= mask[i] }
    }
}

/// AdamW state for one adapter's parameters, in `visitParameters` order.
final class AdamW {
    let beta1 = 0.9, beta2 = 0.999, eps = 1e-8
    var m: [Float], v: [Float]
    var t = 0

    init(count: Int) {
        m = [Float](repeating: 0, count: count)
        v = m
    }

    /// One decoupled-weight-decay Adam step on the adapter's parameters with their gradients times `gradScale`.
    func update(_ a: any LinearAdapter<Float>, gradScale: Float, lr: Double, weightDecay: Double) {
        t += 1
        let c1 = 1 - pow(beta1, Double(t)), c2 = 1 - pow(beta2, Double(t))
        let b1 = Float(beta1), b2 = Float(beta2)
        let step = Float(lr / c1), vScale = Float(1 / c2), decay = Float(1 - lr * weightDecay), e = Float(eps)
        var offset = 0
        a.visitParameters { w, g in
            for i in 0..<w.count {
                let gi = g[i] * gradScale
                let mi = b1 * m[offset + i] + (1 - b1) * gi
                let vi = b2 * v[offset + i] + (1 - b2) * gi * gi
                m[offset + i] = mi
                v[offset + i] = vi
                w[i] = w[i] * decay - step * mi / ((vi * vScale).squareRoot() + e)
            }
            offset += w.count
        }
    }
}
