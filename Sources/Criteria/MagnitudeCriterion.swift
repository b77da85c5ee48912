import PruneFramework

/// Magnitude: ‖W‖₁ or ‖W‖₂ of each slice of a unit, reduced over the unit's slices; |W_ij| for
/// single weights (mask schedulers).
public struct MagnitudeCriterion: WeightCriterion {
    public static let name = "magnitude"
    public static let summary = "weight norm of each unit's slices (l1 or l2), reduced over slices; |W| per weight for mask schedulers"
    public static let keys = [
        PluginKey("norm", "string", default: "\"l2\"", allowed: ["l1", "l2"], "per-slice norm"),
        PluginKey("reduction", "string", default: "\"sum\"", allowed: ["sum", "mean", "max"], "how slices combine"),
    ]

    public var norm = "l2"
    public var reduction = "sum"

    public init(norm: String = "l2", reduction: String = "sum") {
        self.norm = norm
        self.reduction = reduction
    }

    enum CodingKeys: String, CodingKey { case norm, reduction }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        norm = try c.choice(.norm, default: "l2", allowed: ["l1", "l2"])
        reduction = try c.choice(.reduction, default: "sum", allowed: ["sum", "mean", "max"])
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        group.units.map { u in
            SliceMath.reduce(u.slices.map { s in
                norm == "l1" ? SliceMath.sum(s, in: context.model) { w, _ in Double(abs(w)) }
                    : SliceMath.sum(s, in: context.model) { w, _ in Double(w * w) }.squareRoot()
            }, reduction)
        }
    }

    /// |W_ij| (both norms agree on a single weight).
    public func weightScores(of tensor: String, context: ScoringContext) throws -> [Double] {
        try Masking.scores(of: tensor, in: context.model) { w, _ in Double(abs(w)) }
    }
}
