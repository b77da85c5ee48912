import PruneFramework

/// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"):
/// |W_ij|·‖X_j‖₂, with X the calibration inputs of the linear layer; the structured form sums it over
/// a unit's slices. Slices of tensors without inputs (norms, embeddings) contribute nothing.
public struct WandaCriterion: Criterion {
    public static let name = "wanda"
    public static let summary = "|W|·‖X‖₂ from calibration activations, summed over each unit's slices"
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
        guard let stats = context.statistics else {
            throw PruneError(.invalidArgument, "criterion 'wanda' needs calibration activation statistics; the recipe's calibration produced none")
        }
        var norms: [String: [Double]] = [:]
        return group.units.map { u in
            SliceMath.reduce(u.slices.compactMap { s -> Double? in
                if norms[s.tensor] == nil { norms[s.tensor] = stats.input(of: s.tensor)?.l2Norms }
                guard let n = norms[s.tensor] else { return nil }
                return SliceMath.sum(s, in: context.model) { w, j in Double(abs(w)) * n[j] }
            }, reduction)
        }
    }
}
