import Foundation

/// Per-channel sums of a per-weight salience s(w, g, F) (g = ∂L/∂w of the mean calibration NLL, F
/// the diagonal empirical Fisher): for each tensor, the sum over every row and over every column.
/// This is all a Taylor-style criterion reads to score structures whose slices are rows and columns,
/// so the full gradient need not outlive the block it belongs to (`Transformer.channelSums`).
///
/// A vector (a norm's weight, a bias) has one row per element, as in `TensorSlice`.
public struct ChannelSums: Sendable {
    /// Sums over each row (axis 0 channel) and each column (axis 1 channel), by tensor name.
    public var rows: [String: [Double]] = [:]
    public var cols: [String: [Double]] = [:]
    /// Summed calibration NLL of the pass.
    public var loss = LossSum(sum: 0, count: 0)
    /// Whether each weight's |salience| was summed (element-wise estimators); otherwise the signed
    /// salience was, and a channel's value is the absolute value of its sum (the vector estimator).
    public var absolute = false

    public init(absolute: Bool) { self.absolute = absolute }

    /// Σ over the slice's channels of the channel's value; 0 for a tensor without sums.
    public func value(of s: TensorSlice) -> Double {
        guard let sums = s.axis == 0 ? rows[s.tensor] : cols[s.tensor] else { return 0 }
        var total = 0.0
        for c in s.range where c < sums.count { total += absolute ? sums[c] : abs(sums[c]) }
        return total
    }

    /// Adds the row and column sums of tensor `name` (shape `shape`) from its weights, gradient and
    /// Fisher diagonal (nil: zero), summing in the order a per-channel loop over the tensor would.
    mutating func add(_ name: String, shape: [Int], w: UnsafePointer<Float>, g: UnsafePointer<Float>, f: UnsafePointer<Float>?,
                      salience: (Float, Float, Float) -> Double) {
        let width = shape.count == 2 ? shape[1] : 1, n = shape.count == 2 ? shape[0] : shape.reduce(1, *)
        var r = [Double](repeating: 0, count: n), c = [Double](repeating: 0, count: width)
        for i in 0..<n {
            var acc = 0.0
            for j in 0..<width {
                let k = i * width + j
                let v = salience(w[k], g[k], f?[k] ?? 0)
                let x = absolute ? abs(v) : v
                acc += x
                c[j] += x
            }
            r[i] = acc
        }
        rows[name] = r
        cols[name] = c
    }
}

/// A gradient criterion whose structure scores need only `ChannelSums` of a per-weight salience,
/// so the runner can compute them block by block instead of keeping the model's full gradient.
public protocol ChannelSumCriterion: Criterion {
    /// The salience of one weight from its value w, its gradient g and its Fisher diagonal f (0
    /// when the criterion does not declare `.fisher`).
    func salience(_ w: Float, _ g: Float, _ f: Float) -> Double
    /// Whether channels sum |salience| (true) or the salience, made absolute per channel (false).
    var sumsAbsoluteValues: Bool { get }
}
