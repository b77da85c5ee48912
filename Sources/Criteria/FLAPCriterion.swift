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
/// Bias compensation (`compensate`, on by default as in FLAP's code): after the plan and before the
/// surgery, each removed input channel j of attn_output (the columns of the removed KV groups' query
/// heads) and ffn_down moves its mean contribution W_:,j·E[X_j] into the projection's bias
/// (FLAP's `baseline_inp`: bias = W[:, removed] @ mean[removed]), so every compensated layer's mean
/// output over the calibration tokens is unchanged. E[X_j] is the calibration mean of the step's
/// statistics, those of the model before the cut, which is what FLAP uses also with
/// `calibration.sequential` (there only the choice of units is made layer by layer). The model gains
/// `attn_output.bias` and `ffn_down.bias` in every layer (`ModelConfig.outputBias`), which llama.cpp's
/// `llama` and `deci` loaders take; a Qwen2 model with them is written as `deci`. Whole blocks and
/// hidden channels are cut without compensation. The runner refuses `compensate` with a
/// `compensator` stage (both repair the removed channels), with mask schedulers, and with a
/// safetensors output (Hugging Face's Llama has these biases only with q/k/v and gate/up biases).
/// On SmolLM2 the MLP's compensation helps and the heads' can hurt (README).
public struct FLAPCriterion: CompensatingCriterion {
    public static let name = "flap"
    public static let summary = "FLAP fluctuation Var(X_j)·‖W_:,j‖² of the output projection's input channels, standardised per layer for global allocation; removed channels' mean output moved into attn_output/ffn_down biases (compensate)"
    public static let keys = [
        PluginKey("metric", "string", default: "\"wifv\"", allowed: ["wifv", "ifv"], "wifv: Var(X_j)·‖W_:,j‖²; ifv: Var(X_j) alone"),
        PluginKey("standardize", "string", default: "\"layer\"", allowed: ["layer", "none"],
                  "layer: z-score each group's channel metrics (FLAP, for the global scheduler); none: raw metric"),
        PluginKey("compensate", "boolean", default: "true",
                  "add each removed attn_output/ffn_down input channel's mean contribution W_:,j·E[X_j] to the projection's bias (FLAP's bias compensation)"),
    ]
    public static let compensationKey = "compensate"

    public var metric = "wifv"
    public var standardize = "layer"
    public var compensate = true
    public var inputs: CriterionInputs { [.weights, .activationStatistics] }
    public var compensates: Bool { compensate }

    public init(metric: String = "wifv", standardize: String = "layer", compensate: Bool = true) {
        self.metric = metric
        self.standardize = standardize
        self.compensate = compensate
    }

    enum CodingKeys: String, CodingKey { case metric, standardize, compensate }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metric = try c.choice(.metric, default: "wifv", allowed: ["wifv", "ifv"])
        standardize = try c.choice(.standardize, default: "layer", allowed: ["layer", "none"])
        compensate = try c.value(.compensate, default: true)
    }

    /// FLAP's bias compensation of the plan's removed attn_output and ffn_down columns, from the
    /// step's calibration means (`BiasCompensation`).
    public func compensate(_ model: Transformer, plan: PruningPlan, groups: [PruneGroup],
                           context: ScoringContext) throws -> (model: Transformer, summary: String) {
        guard let stats = context.statistics else {
            throw PruneError(.invalidArgument, "criterion 'flap': compensate needs calibration activation statistics; the recipe's calibration produced none")
        }
        let removed = plan.removedOutputProjectionColumns(groups)
        let r = try BiasCompensation.apply(to: model, removing: removed, statistics: stats)
        return (r.model, "flap: " + r.summary)
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
