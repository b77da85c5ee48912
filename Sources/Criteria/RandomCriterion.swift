import PruneFramework

/// Random: uniform scores from the recipe's seed (the baseline every pruning paper reports).
public struct RandomCriterion: WeightCriterion {
    public static let name = "random"
    public static let summary = "uniform random scores from a seed (baseline); per weight too, for mask schedulers"
    public static let keys = [PluginKey("seed", "integer", default: "null", "seed; null = the calibration seed")]

    public var seed: Int?

    public init(seed: Int? = nil) { self.seed = seed }

    enum CodingKeys: String, CodingKey { case seed }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        seed = try decoder.container(keyedBy: CodingKeys.self).value(.seed, default: nil as Int?)
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        var rng = generator(salt: group.id, context)
        return group.units.map { _ in Double(rng.nextUnit()) }
    }

    /// One uniform draw per weight; each matrix has its own stream.
    public func weightScores(of tensor: String, context: ScoringContext) throws -> [Double] {
        var rng = generator(salt: tensor, context)
        return try Masking.scores(of: tensor, in: context.model) { _, _ in Double(rng.nextUnit()) }
    }

    /// The seed with a name (group id or tensor) mixed in (FNV-1a), so groups get independent draws.
    func generator(salt name: String, _ context: ScoringContext) -> SplitMix64 {
        let salt = name.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        return SplitMix64(seed: UInt64(bitPattern: Int64(seed ?? Int(truncatingIfNeeded: context.seed))) ^ salt)
    }
}
