import PruneFramework

/// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"):
/// |W_ij|·‖X_j‖₂, with X the calibration inputs of the linear layer; the structured form sums it over
/// a unit's slices. Slices of tensors without inputs (norms, embeddings) contribute nothing. For mask
/// schedulers (unstructured, N:M) each weight is scored alone: S_ij = |W_ij|·‖X_j‖₂.
///
/// `"slices": "output"` is FLAP's Wanda-sp (An et al. 2024, its `prune_wanda_sp`): a KV group or MLP
/// channel is scored by its own columns of `attn_output` / `ffn_down` only, the input it produces.
/// The default `"all"` also counts the rows of the projections that read the residual stream, whose
/// ‖X_j‖ a few massive-activation dimensions dominate on models such as Qwen2.5.
public struct WandaCriterion: WeightCriterion {
    public static let name = "wanda"
    public static let summary = "|W|·‖X‖₂ from calibration activations, summed over each unit's slices; per weight for mask schedulers"
    public static let keys = [
        PluginKey("reduction", "string", default: "\"sum\"", allowed: ["sum", "mean", "max"], "how slices combine"),
        PluginKey("slices", "string", default: "\"all\"", allowed: ["all", "output"],
                  "all of a unit's slices, or only its attn_output/ffn_down columns (FLAP's Wanda-sp)"),
    ]

    public var reduction = "sum"
    public var slices = "all"
    public var inputs: CriterionInputs { [.weights, .activationStatistics] }

    public init(reduction: String = "sum", slices: String = "all") {
        self.reduction = reduction
        self.slices = slices
    }

    enum CodingKeys: String, CodingKey { case reduction, slices }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reduction = try c.choice(.reduction, default: "sum", allowed: ["sum", "mean", "max"])
        slices = try c.choice(.slices, default: "all", allowed: ["all", "output"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(reduction, forKey: .reduction)
        if slices != "all" { try c.encode(slices, forKey: .slices) }
    }

    /// The slices a unit is scored by: all, or its columns of attn_output and ffn_down.
    func scored(_ unit: PruneUnit, group: PruneGroup) throws -> [TensorSlice] {
        guard slices == "output" else { return unit.slices }
        let own = unit.slices.filter { s in
            s.axis == 1 && [TensorRole.attnOutput, .ffnDown].contains(TensorNames.parse(s.tensor)?.role)
        }
        guard !own.isEmpty else {
            throw PruneError(.invalidArgument, "criterion 'wanda': slices 'output' scores KV groups and MLP channels by their attn_output/ffn_down columns; group '\(group.id)' (\(group.kind.rawValue)) has none; use slices 'all'")
        }
        return own
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        let stats = try statistics(context)
        var norms: [String: [Double]] = [:]
        return try group.units.map { u in
            SliceMath.reduce(try scored(u, group: group).compactMap { s -> Double? in
                if norms[s.tensor] == nil { norms[s.tensor] = stats.input(of: s.tensor)?.l2Norms }
                guard let n = norms[s.tensor] else { return nil }
                return SliceMath.sum(s, in: context.model) { w, j in Double(abs(w)) * n[j] }
            }, reduction)
        }
    }

    /// |W_ij|·‖X_j‖₂ for every weight of a linear matrix.
    public func weightScores(of tensor: String, context: ScoringContext) throws -> [Double] {
        guard let norms = try statistics(context).input(of: tensor)?.l2Norms else {
            throw PruneError(.invalidArgument, "criterion 'wanda': no calibration statistics for the input of '\(tensor)'; only the linear matrices of decoder blocks can be scored")
        }
        guard let cols = context.model.params.entry(tensor)?.shape.last, cols == norms.count else {
            throw PruneError(.shapeMismatch, "criterion 'wanda': '\(tensor)' has a different input width than its \(norms.count) calibration columns; calibrate the model being scored")
        }
        return try Masking.scores(of: tensor, in: context.model) { w, j in Double(abs(w)) * norms[j] }
    }

    func statistics(_ context: ScoringContext) throws -> ActivationStatistics {
        guard let stats = context.statistics else {
            throw PruneError(.invalidArgument, "criterion 'wanda' needs calibration activation statistics; the recipe's calibration produced none")
        }
        return stats
    }
}
