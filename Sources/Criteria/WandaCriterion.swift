import PruneFramework

/// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"):
/// |W_ij|·‖X_j‖₂, with X the calibration inputs of the linear layer; the structured form sums it over
/// a unit's slices. Slices of tensors without inputs (norms, embeddings) contribute nothing. For mask
/// schedulers (unstructured, N:M) each weight is scored alone: S_ij = |W_ij|·‖X_j‖₂.
public struct WandaCriterion: WeightCriterion {
    public static let name = "wanda"
    public static let summary = "|W|·‖X‖₂ from calibration activations, summed over each unit's slices; per weight for mask schedulers"
    public static let keys = [
        PluginKey("reduction", "string", default: "\"sum\"", allowed: ["sum", "mean", "max"], "how slices combine"),
    ]

    public var reduction = "sum"
    public var inputs: CriterionInputs { [.weights, .activationStatistics] }

    public init(reduction: String = "sum") { self.reduction = reduction }

    enum CodingKeys: String, CodingKey { case reduction }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        reduction = try decoder.container(keyedBy: CodingKeys.self).choice(.reduction, default: "sum", allowed: ["sum", "mean", "max"])
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        let stats = try statistics(context)
        var norms: [String: [Double]] = [:]
        return group.units.map { u in
            SliceMath.reduce(u.slices.compactMap { s -> Double? in
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
