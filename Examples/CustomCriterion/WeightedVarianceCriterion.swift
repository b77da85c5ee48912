import PruneFramework

/// An example criterion: Σ W_ij² · Var(X_j) over a unit's slices (a FLAP-like fluctuation score).
public struct WeightedVarianceCriterion: Criterion {
    public static let name = "weighted-variance"
    public static let summary = "example: Σ W² · Var(X) over each unit's slices"
    public static let keys = [PluginKey("scale", "number", default: "1.0", "multiplies every score")]

    public var scale = 1.0
    public var inputs: CriterionInputs { [.weights, .activationStatistics] }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        scale = try decoder.container(keyedBy: AnyCodingKey.self).number(AnyCodingKey("scale"), default: 1, in: 0...1e9)
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        guard let stats = context.statistics else { throw PruneError(.invalidArgument, "weighted-variance needs calibration statistics") }
        return group.units.map { unit in
            scale * unit.slices.reduce(0) { total, slice in
                guard let variance = stats.input(of: slice.tensor)?.variances else { return total }
                return total + SliceMath.sum(slice, in: context.model) { w, j in Double(w * w) * variance[j] }
            }
        }
    }
}

/// Adds the example's criterion to a plugin set.
public func registerExamplePlugins(_ plugins: PluginSet) {
    plugins.criteria.register(WeightedVarianceCriterion.self) { $0 }
}
