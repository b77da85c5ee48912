import Foundation

/// FLAP's bias compensation (An et al. 2024, "Fluctuation-based Adaptive Structured Pruning for
/// Large Language Models", AAAI 2024): an input channel j removed from an output projection W
/// (attn_output, ffn_down) leaves its mean contribution W_:,j·E[X_j] in the projection's bias, so
/// the projection's mean output over the calibration tokens does not change:
///
///     bias += Σ_{j removed} W_:,j · mean_j,   mean_j = Σ_t X_tj / tokens   (sums in Double)
///
/// (FLAP's code: `bias = W[:, ~mask] @ baseline_inp[~mask]`). It runs before the surgery, on the
/// model whose columns are still there.
public enum BiasCompensation {
    /// The model to cut and a line for the log: `model` with output biases (`withOutputBiases`,
    /// zeros where it had none) and each tensor of `removed` (attn_output or ffn_down names, with
    /// their removed input columns) compensated from the column sums and counts of `statistics`.
    /// An empty `removed` returns `model` unchanged.
    public static func apply(to model: Transformer, removing removed: [String: Set<Int>],
                             statistics: ActivationStatistics) throws -> (model: Transformer, summary: String) {
        let tensors = removed.filter { !$0.value.isEmpty }.keys.sorted()
        guard !tensors.isEmpty else {
            return (model, "the plan removes no attn_output or ffn_down column (whole blocks and hidden channels are not compensated); no bias added")
        }
        let deltas = try tensors.map { try delta(of: $0, removing: removed[$0]!, in: model, statistics: statistics) }
        let out = try model.withOutputBiases()
        var changed: [String] = []
        for (tensor, d) in zip(tensors, deltas) {
            guard let (l, role) = TensorNames.parse(tensor), let layer = l, let biasRole = role.outputBias else { continue }
            let name = TensorNames.name(biasRole, layer)
            let b = out.params.pointer(name)
            for r in 0..<d.count { b[r] += Float(d[r]) }
            changed.append(name)
        }
        out.params.markModified(changed)
        return (out, summary(tensors, removed, tokens: statistics.input(of: tensors[0])?.count ?? 0))
    }

    /// Σ_{j ∈ cut} W_:,j · mean_j for the output projection `tensor` (D values, in Double).
    static func delta(of tensor: String, removing cut: Set<Int>, in model: Transformer,
                      statistics: ActivationStatistics) throws -> [Double] {
        guard let role = TensorNames.parse(tensor)?.role, role.outputBias != nil,
              let e = model.params.entry(tensor), e.shape.count == 2 else {
            throw PruneError(.invalidArgument, "bias compensation: '\(tensor)' is not an attn_output or ffn_down matrix of the model")
        }
        let (n, k) = (e.shape[0], e.shape[1])
        guard let col = statistics.input(of: tensor), col.count > 0 else {
            throw PruneError(.invalidArgument, "bias compensation: no calibration statistics for the input of '\(tensor)'; calibrate the model being cut")
        }
        let outside = cut.filter { !(0..<k).contains($0) }.sorted()
        guard col.sum.count == k, outside.isEmpty else {
            throw PruneError(.shapeMismatch, "bias compensation: '\(tensor)' has \(k) input columns, its calibration statistics \(col.sum.count)\(outside.isEmpty ? "" : ", and the cut names columns \(Array(outside.prefix(5)))"); calibrate the model being cut")
        }
        let columns = cut.sorted(), tokens = Double(col.count)
        let means = columns.map { col.sum[$0] / tokens }
        var d = [Double](repeating: 0, count: n)
        model.params.withValues(tensor) { w in
            for r in 0..<n {
                let row = w.baseAddress! + r * k
                var s = 0.0
                for (i, j) in columns.enumerated() { s += Double(row[j]) * means[i] }
                d[r] = s
            }
        }
        return d
    }

    /// "the mean output of 96 attn_output columns in 20 layers and 1,234 ffn_down columns in 24 layers ...".
    static func summary(_ tensors: [String], _ removed: [String: Set<Int>], tokens: Int) -> String {
        func part(_ role: TensorRole) -> String? {
            let ts = tensors.filter { TensorNames.parse($0)?.role == role }
            guard !ts.isEmpty else { return nil }
            let columns = ts.reduce(0) { $0 + removed[$1]!.count }
            return "\(columns) removed \(role.canonicalSuffix.replacingOccurrences(of: ".weight", with: "")) columns in \(ts.count) layers"
        }
        let parts = [part(.attnOutput), part(.ffnDown)].compactMap { $0 }.joined(separator: " and ")
        return "added the calibration mean output of \(parts) to the output biases (means over \(tokens) tokens; whole blocks and hidden channels are not compensated)"
    }
}
