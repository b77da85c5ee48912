import Foundation
import PruneFramework

/// FLAP (An et al. 2024, "Fluctuation-based Adaptive Structured Pruning for Large Language Models",
/// AAAI 2024): a unit matters when removing it changes the block's output a lot that a constant cannot
/// make up for.
///
/// The fluctuation metric of input channel j of an output projection W (attn_output for attention,
/// ffn_down for the MLP) is S_j = Var(X_j)·‖W_:,j‖², the calibration variance of the channel's input
/// times the squared norm of the weight column it multiplies (the paper's WIFV; `metric: "ifv"` drops
/// the weight factor). An MLP channel scores S_c; a KV group scores over the attn_output columns of
/// its query heads.
///
/// Global allocation: FLAP standardises the metric of every layer and structure kind to zero mean and
/// unit standard deviation before ranking all units of the model together, and scores a head by the
/// mean of its channels' standardised metrics. With `standardize: "layer"` (the default) each group
/// (one kind in one layer) is standardised this way, so the `global` scheduler with
/// `normalization: "none"` reproduces FLAP's adaptive structure search; `"none"` returns the raw
/// metric (heads: the sum over their channels).
///
/// Bias compensation: FLAP adds the removed channels' mean contribution, W_:,j·E[X_j], to the output
/// projection's bias. LLaMA models (and this framework's model) have no bias tensors, so the
/// compensation is not done: it would need a bias added to attn_output and ffn_down in the model,
/// the surgery and both exporters. Scores are unaffected.
public struct FLAPCriterion: Criterion {
    public static let name = "flap"
    public static let summary = "FLAP fluctuation Var(X_j)·‖W_:,j‖² of the output projection's input channels, standardised per layer for global allocation (no bias compensation: LLaMA has no biases)"
    public static let keys = [
        PluginKey("metric", "string", default: "\"wifv\"", allowed: ["wifv", "ifv"], "wifv: Var(X_j)·‖W_:,j‖²; ifv: Var(X_j) alone"),
        PluginKey("standardize", "string", default: "\"layer\"", allowed: ["layer", "none"],
                  "layer: z-score each group's channel metrics (FLAP, for the global scheduler); none: raw metric"),
    ]

    public var metric = "wifv"
    public var standardize = "layer"
    public var inputs: CriterionInputs { [.weights, .activationStatistics] }

    public init(metric: String = "wifv", standardize: String = "layer") {
        self.metric = metric
        self.standardize = standardize
    }

    enum CodingKeys: String, CodingKey { case metric, standardize }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metric = try c.choice(.metric, default: "wifv", allowed: ["wifv", "ifv"])
        standardize = try c.choice(.standardize, default: "layer", allowed: ["layer", "none"])
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        guard let l = group.layer, group.kind == .kvGroup || group.kind == .mlpChannel else {
            throw PruneError(.unsupported, "criterion 'flap' scores kv-groups and mlp-channels; group '\(group.id)' is neither (use block-influence for blocks)")
        }
        let tensor = group.kind == .kvGroup ? TensorNames.attnOutput(l) : TensorNames.ffnDown(l)
        var channel = try channelMetric(tensor, context: context)
        if standardize == "layer" { channel = Self.zScores(channel) }
        // Each unit's channels: its attn_output / ffn_down columns.
        return try group.units.map { u in
            guard let s = u.slices.first(where: { $0.tensor == tensor && $0.axis == 1 }), s.range.upperBound <= channel.count else {
                throw PruneError(.badFormat, "criterion 'flap': a unit of group '\(group.id)' has no column slice of '\(tensor)' within its \(channel.count) columns")
            }
            let sum = channel[s.range].reduce(0, +)
            return standardize == "layer" ? sum / Double(s.count) : sum
        }
    }

    /// The fluctuation metric of every input channel of a linear matrix: Var(X_j)·‖W_:,j‖² (or Var(X_j)).
    func channelMetric(_ tensor: String, context: ScoringContext) throws -> [Double] {
        guard let stats = context.statistics else {
            throw PruneError(.invalidArgument, "criterion 'flap' needs calibration activation statistics; the recipe's calibration produced none")
        }
        guard let col = stats.input(of: tensor) else {
            throw PruneError(.invalidArgument, "criterion 'flap': no calibration statistics for the input of '\(tensor)'; calibrate the model being scored")
        }
        guard let e = context.model.params.entry(tensor), e.shape.count == 2, e.shape[1] == col.sum.count else {
            throw PruneError(.shapeMismatch, "criterion 'flap': '\(tensor)' does not have \(col.sum.count) input columns like its calibration statistics; calibrate the model being scored")
        }
        let variance = col.variances
        guard metric == "wifv" else { return variance }
        let rows = e.shape[0], cols = e.shape[1]
        var norms = [Double](repeating: 0, count: cols)
        let w = context.model.params.view(tensor)
        norms.withUnsafeMutableBufferPointer { n in
            for r in 0..<rows {
                let row = w.baseAddress! + r * cols
                for j in 0..<cols { n[j] += Double(row[j]) * Double(row[j]) }
            }
        }
        return zip(variance, norms).map { $0 * $1 }
    }

    /// (x − mean)/std with the sample standard deviation (as FLAP's torch.std); zeros when constant.
    static func zScores(_ x: [Double]) -> [Double] {
        guard x.count > 1 else { return x.map { _ in 0 } }
        let m = x.reduce(0, +) / Double(x.count)
        let sd = (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
        return x.map { sd > 0 ? ($0 - m) / sd : 0 }
    }
}
