import Foundation
import PruneFramework

/// Ranks units across all groups by (normalised) score and removes the lowest until the target is met.
public struct GlobalScheduler: TargetedScheduler {
    public static let name = "global"
    public static let summary = "rank units across layers by normalised score; remove the lowest to the target"
    public static let keys = PruneTarget.keys + [
        PluginKey("normalization", "string", default: "\"mean\"", allowed: ["none", "mean", "max", "gaussian"],
                  "per-group score normalisation before ranking"),
    ]

    public var target: PruneTarget
    public var normalization = "mean"

    public init(ratio: Double, normalization: String = "mean") {
        target = PruneTarget(ratio: ratio, structureRatio: nil)
        self.normalization = normalization
    }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        target = try PruneTarget(from: c)
        normalization = try c.choice(AnyCodingKey("normalization"), default: "mean", allowed: ["none", "mean", "max", "gaussian"])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(Self.name, forKey: AnyCodingKey("type"))
        try target.encode(into: &c)
        try c.encode(normalization, forKey: AnyCodingKey("normalization"))
    }

    func normalised(_ s: [Double]) -> [Double] {
        guard !s.isEmpty else { return s }
        switch normalization {
        case "mean":
            let m = s.reduce(0, +) / Double(s.count)
            return m != 0 ? s.map { $0 / abs(m) } : s
        case "max":
            let m = s.map(abs).max() ?? 0
            return m != 0 ? s.map { $0 / m } : s
        case "gaussian":
            let m = s.reduce(0, +) / Double(s.count)
            let sd = (s.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(s.count)).squareRoot()
            return s.map { sd > 0 ? ($0 - m) / sd : 0 }
        default: return s
        }
    }

    public func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        try target.rounded(allocate(groups, scores, context), groups: groups, scores: scores, context: context)
    }

    /// The plan before `roundTo`.
    func allocate(_ groups: [PruneGroup], _ scores: [[Double]], _ context: PlanContext) -> PruningPlan {
        var candidates: [(score: Double, group: Int, unit: Int)] = []
        for (gi, s) in scores.enumerated() {
            for (u, v) in normalised(s).enumerated() { candidates.append((v, gi, u)) }
        }
        candidates.sort { ($0.score, $0.group, $0.unit) < ($1.score, $1.group, $1.unit) }
        let total = candidates.count
        let want: Int
        if target.structureRatio != nil {
            want = Int((target.structureFraction(context) * Double(total)).rounded())
        } else {
            want = target.parametersToRemove(context)
        }
        var removed = [Int](repeating: 0, count: groups.count)
        var plan = PruningPlan(), done = 0, units = 0
        for c in candidates {
            let reached = target.structureRatio != nil ? units >= want : done >= want
            if reached { break }
            guard removed[c.group] < removable(groups[c.group]) else { continue }
            let p = groups[c.group].units[c.unit].parameterCount
            // Skip a unit that would overshoot the parameter target by more than it helps.
            if target.structureRatio == nil, done + p - want > want - done { continue }
            removed[c.group] += 1
            plan.removals[groups[c.group].id, default: []].append(c.unit)
            done += p
            units += 1
        }
        for k in plan.removals.keys { plan.removals[k]?.sort() }
        return plan
    }
}
