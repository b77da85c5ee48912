import Foundation

/// Streaming per-column statistics of the inputs of every linear layer (sum, sum of squares, count),
/// collected through the forward observer; activations themselves are never stored.
public final class ActivationStatistics: ForwardObserver, @unchecked Sendable {
    public struct Column: Sendable {
        public var sum: [Double]
        public var sumSq: [Double]
        public var count: Int

        /// ‖X_j‖₂ over all observed tokens.
        public var l2Norms: [Double] { sumSq.map { $0.squareRoot() } }
        /// Per-column variance (population).
        public var variances: [Double] {
            guard count > 0 else { return sum.map { _ in 0 } }
            let n = Double(count)
            return zip(sum, sumSq).map { max(0, $1 / n - ($0 / n) * ($0 / n)) }
        }
    }

    /// Sites that feed linear layers.
    public static let linearInputs: [ActivationSite] = [.attnInput, .attnOutputInput, .mlpInput, .mlpIntermediate]

    public private(set) var columns: [String: Column] = [:]
    let sites: Set<ActivationSite>

    public init(sites: [ActivationSite] = ActivationStatistics.linearInputs) { self.sites = Set(sites) }

    static func key(_ layer: Int, _ site: ActivationSite) -> String { "\(layer).\(site.rawValue)" }

    public func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        guard sites.contains(site) else { return }
        let k = Self.key(layer, site)
        var c = columns[k] ?? Column(sum: [Double](repeating: 0, count: cols), sumSq: [Double](repeating: 0, count: cols), count: 0)
        columns[k] = nil  // keep the arrays uniquely referenced while updating
        c.sum.withUnsafeMutableBufferPointer { s in
            c.sumSq.withUnsafeMutableBufferPointer { q in
                for r in 0..<rows {
                    let row = activations.baseAddress! + r * cols
                    for j in 0..<cols {
                        let v = Double(row[j])
                        s[j] += v
                        q[j] += v * v
                    }
                }
            }
        }
        c.count += rows
        columns[k] = c
    }

    /// Statistics of the input of a linear weight (by canonical name), if collected.
    public func input(of tensor: String) -> Column? {
        guard let (layer, site) = Self.inputSite(of: tensor) else { return nil }
        return columns[Self.key(layer, site)]
    }

    /// The activation site feeding a linear weight: attn_q/k/v ← attn input, attn_output ← head
    /// outputs, ffn_gate/up ← MLP input, ffn_down ← MLP intermediate.
    public static func inputSite(of tensor: String) -> (Int, ActivationSite)? {
        guard tensor.hasPrefix("blk."), let l = Int(tensor.dropFirst(4).prefix { $0 != "." }) else { return nil }
        if tensor.hasSuffix("attn_q.weight") || tensor.hasSuffix("attn_k.weight") || tensor.hasSuffix("attn_v.weight") { return (l, .attnInput) }
        if tensor.hasSuffix("attn_output.weight") { return (l, .attnOutputInput) }
        if tensor.hasSuffix("ffn_gate.weight") || tensor.hasSuffix("ffn_up.weight") { return (l, .mlpInput) }
        if tensor.hasSuffix("ffn_down.weight") { return (l, .mlpIntermediate) }
        return nil
    }
}
