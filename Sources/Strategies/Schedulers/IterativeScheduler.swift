import PruneFramework

/// Reaches the target in several steps, re-scoring the smaller model in between; each step
/// allocates like `uniform` or `global`.
public struct IterativeScheduler: TargetedScheduler {
    public static let name = "iterative"
    public static let summary = "N steps to the target, re-scoring in between; each step uniform or global"
    public static let keys = PruneTarget.keys + [
        PluginKey("steps", "integer", default: "4", "number of pruning steps"),
        PluginKey("allocation", "string", default: "\"uniform\"", allowed: ["uniform", "global"], "allocation within a step"),
        PluginKey("normalization", "string", default: "\"mean\"", allowed: ["none", "mean", "max", "gaussian"], "for global allocation"),
    ]

    public var target: PruneTarget
    public var steps: Int
    public var allocation: String
    public var normalization: String

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        target = try PruneTarget(from: c)
        steps = try c.integer(AnyCodingKey("steps"), default: 4, in: 1...1000)
        allocation = try c.choice(AnyCodingKey("allocation"), default: "uniform", allowed: ["uniform", "global"])
        normalization = try c.choice(AnyCodingKey("normalization"), default: "mean", allowed: ["none", "mean", "max", "gaussian"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(Self.name, forKey: AnyCodingKey("type"))
        try target.encode(into: &c)
        try c.encode(steps, forKey: AnyCodingKey("steps"))
        try c.encode(allocation, forKey: AnyCodingKey("allocation"))
        try c.encode(normalization, forKey: AnyCodingKey("normalization"))
    }

    public func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        if allocation == "global" {
            var g = GlobalScheduler(ratio: 0, normalization: normalization)
            g.target = target
            return try g.plan(groups: groups, scores: scores, context: context)
        }
        var u = UniformScheduler(ratio: 0)
        u.target = target
        return try u.plan(groups: groups, scores: scores, context: context)
    }
}
