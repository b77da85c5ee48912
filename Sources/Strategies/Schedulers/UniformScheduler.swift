import PruneFramework

/// The same fraction of units removed in every group (LLM-Pruner's setting), chosen so the removed
/// parameters meet the target as closely as whole units allow.
public struct UniformScheduler: TargetedScheduler {
    public static let name = "uniform"
    public static let summary = "the same fraction of units in every group of the grouping's layers"
    public static let keys = PruneTarget.keys

    public var target: PruneTarget

    public init(ratio: Double) { target = PruneTarget(ratio: ratio, structureRatio: nil) }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        target = try PruneTarget(from: decoder.container(keyedBy: AnyCodingKey.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(Self.name, forKey: AnyCodingKey("type"))
        try target.encode(into: &c)
    }

    public func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        try target.rounded(allocate(groups, scores, context), groups: groups, scores: scores, context: context)
    }

    /// The plan before `roundTo`.
    func allocate(_ groups: [PruneGroup], _ scores: [[Double]], _ context: PlanContext) -> PruningPlan {
        if target.structureRatio != nil {
            return uniformPlan(groups, scores, fraction: target.structureFraction(context))
        }
        let want = target.parametersToRemove(context)
        // Counted from the widths left, so hidden channels crossing other groups count once.
        func removed(_ p: PruningPlan) -> Int { p.removedParameters(in: groups, from: context.model.config) ?? p.removedParameters(in: groups) }
        // Removed parameters grow with the fraction: bisect for the closest.
        var lo = 0.0, hi = 1.0
        for _ in 0..<50 {
            let mid = (lo + hi) / 2
            if removed(uniformPlan(groups, scores, fraction: mid)) < want { lo = mid } else { hi = mid }
        }
        let a = uniformPlan(groups, scores, fraction: lo), b = uniformPlan(groups, scores, fraction: hi)
        return abs(removed(a) - want) <= abs(removed(b) - want) ? a : b
    }

    func uniformPlan(_ groups: [PruneGroup], _ scores: [[Double]], fraction: Double) -> PruningPlan {
        var plan = PruningPlan()
        for (g, s) in zip(groups, scores) {
            let n = min(removable(g), Int((fraction * Double(g.units.count)).rounded()))
            if n > 0 { plan.removals[g.id] = Array(ascendingOrder(s).prefix(n)).sorted() }
        }
        return plan
    }
}
