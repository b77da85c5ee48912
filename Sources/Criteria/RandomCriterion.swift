import PruneFramework

/// Random: uniform scores from the recipe's seed (the baseline every pruning paper reports).
public struct RandomCriterion: Criterion {
    public static let name = "random"
    public static let summary = "uniform random scores from a seed (baseline)"
    public static let keys = [PluginKey("seed", "integer", default: "null", "seed; null = the calibration seed")]

    public var seed: Int?

    public init(seed: Int? = nil) { self.seed = seed }

    enum CodingKeys: String, CodingKey { case seed }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        seed = try decoder.container(keyedBy: CodingKeys.self).value(.seed, default: nil as Int?)
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        // Mix the group id into the seed so groups get independent draws.
        let salt = group.id.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        var rng = SplitMix64(seed: UInt64(bitPattern: Int64(seed ?? Int(truncatingIfNeeded: context.seed))) ^ salt)
        return group.units.map { _ in Double(rng.nextUnit()) }
    }
}
