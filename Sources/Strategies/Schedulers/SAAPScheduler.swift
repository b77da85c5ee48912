import Foundation
import PruneFramework

/// SAAP's adaptive structure search (Zheng et al. 2024, "Adaptive Pruning for Large Language Models
/// with Structural Importance Awareness", arXiv 2412.15127): layers get different pruning ratios from
/// an importance fluctuation indicator; stable, unimportant layers lose more.
///
/// From the paper: per-layer ratios ranked by an importance fluctuation indicator.
/// Our interpretation (the paper's indicator is computed over calibration batches inside its
/// criterion; our schedulers only see one score per unit):
/// 1. Scores are standardised per structure kind across all groups (z = (s − μ)/σ), so KV groups and
///    MLP channels compare and any constant shift of the scores (e.g. SAAP's Σ log σ_i) drops out.
/// 2. A layer's indicator is importance + `fluctuationWeight` × fluctuation: the mean and the standard
///    deviation of the z-scores of all its units.
/// 3. Layers are ranked by the indicator; the q-th quantile (0 = lowest) gets ratio
///    t + `spread` × (½ − q), clamped to [`minRatio`, `maxRatio`] (as a fraction of each group's units).
/// 4. t is found by bisection so the removed parameters (or units, with `structureRatio`) meet the
///    target; single units are then added or returned (lowest z first) while that brings the total
///    closer, within the bounds, so the target is met as exactly as whole units allow.
/// Groups with no layer (hidden channels) sit at the middle quantile.
public struct SAAPScheduler: TargetedScheduler {
    public static let name = "saap"
    public static let summary = "SAAP: per-layer ratios from importance + fluctuation, bounded, meeting the global target"
    public static let keys = PruneTarget.keys + [
        PluginKey("minRatio", "number", default: "0", "least fraction of a group's units removed, in [0, 1)"),
        PluginKey("maxRatio", "number", default: "0.8", "most fraction of a group's units removed, in (0, 1]"),
        PluginKey("spread", "number", default: "0.2", "ratio difference between the least and the most important layer before clamping"),
        PluginKey("fluctuationWeight", "number", default: "1", "weight of a layer's score spread in its indicator"),
    ]

    public var target: PruneTarget
    public var minRatio = 0.0
    public var maxRatio = 0.8
    public var spread = 0.2
    public var fluctuationWeight = 1.0

    public init(ratio: Double, minRatio: Double = 0, maxRatio: Double = 0.8, spread: Double = 0.2, fluctuationWeight: Double = 1) {
        target = PruneTarget(ratio: ratio, structureRatio: nil)
        self.minRatio = minRatio
        self.maxRatio = maxRatio
        self.spread = spread
        self.fluctuationWeight = fluctuationWeight
    }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        target = try PruneTarget(from: c)
        minRatio = try c.number(AnyCodingKey("minRatio"), default: 0, in: 0...1, openUpper: true)
        maxRatio = try c.number(AnyCodingKey("maxRatio"), default: 0.8, in: 0...1)
        guard maxRatio > minRatio else {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "maxRatio")) = '\(maxRatio)' must exceed minRatio (\(minRatio))")
        }
        spread = try c.number(AnyCodingKey("spread"), default: 0.2, in: 0...2)
        fluctuationWeight = try c.number(AnyCodingKey("fluctuationWeight"), default: 1, in: -100...100)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(Self.name, forKey: AnyCodingKey("type"))
        try target.encode(into: &c)
        try c.encode(minRatio, forKey: AnyCodingKey("minRatio"))
        try c.encode(maxRatio, forKey: AnyCodingKey("maxRatio"))
        try c.encode(spread, forKey: AnyCodingKey("spread"))
        try c.encode(fluctuationWeight, forKey: AnyCodingKey("fluctuationWeight"))
    }

    /// Scores standardised per structure kind across all groups.
    static func standardised(_ groups: [PruneGroup], _ scores: [[Double]]) -> [[Double]] {
        var byKind: [StructureKind: [Double]] = [:]
        for (g, s) in zip(groups, scores) { byKind[g.kind, default: []] += s }
        let stats = byKind.mapValues { v -> (Double, Double) in
            let m = v.reduce(0, +) / Double(max(1, v.count))
            let sd = (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(1, v.count))).squareRoot()
            return (m, sd)
        }
        return zip(groups, scores).map { g, s in
            let (m, sd) = stats[g.kind] ?? (0, 0)
            return s.map { sd > 0 ? ($0 - m) / sd : 0 }
        }
    }

    /// Each group's quantile in [0, 1] of its layer's indicator (importance + weighted fluctuation).
    func quantiles(_ groups: [PruneGroup], _ z: [[Double]]) -> [Double] {
        var pooled: [Int: [Double]] = [:]
        for (g, s) in zip(groups, z) { if let l = g.layer { pooled[l, default: []] += s } }
        let indicator = pooled.mapValues { v -> Double in
            let m = v.reduce(0, +) / Double(max(1, v.count))
            let sd = (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(1, v.count))).squareRoot()
            return m + fluctuationWeight * sd
        }
        let order = indicator.keys.sorted { (indicator[$0]!, $0) < (indicator[$1]!, $1) }
        var q: [Int: Double] = [:]
        for (r, l) in order.enumerated() { q[l] = order.count > 1 ? Double(r) / Double(order.count - 1) : 0.5 }
        return groups.map { g in g.layer.flatMap { q[$0] } ?? 0.5 }
    }

    /// The per-group ratio (fraction of units) before rounding, for offset t.
    func ratio(_ quantile: Double, offset t: Double) -> Double {
        min(maxRatio, max(minRatio, t + spread * (0.5 - quantile)))
    }

    public func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        try target.rounded(try allocate(groups, scores, context), groups: groups, scores: scores, context: context)
    }

    /// The plan before `roundTo`.
    func allocate(_ groups: [PruneGroup], _ scores: [[Double]], _ context: PlanContext) throws -> PruningPlan {
        let z = Self.standardised(groups, scores)
        let q = quantiles(groups, z)
        let order = scores.map(ascendingOrder)
        let structureMode = target.structureRatio != nil
        let totalUnits = groups.reduce(0) { $0 + $1.units.count }
        let want = structureMode ? Int((target.structureFraction(context) * Double(totalUnits)).rounded())
                                 : target.parametersToRemove(context)
        func cost(_ g: Int, _ unit: Int) -> Int { structureMode ? 1 : groups[g].units[unit].parameterCount }
        // Bounds on each group's removed-unit count.
        let hi = groups.map { g in min(removable(g), Int((maxRatio * Double(g.units.count) + 1e-9).rounded(.down))) }
        let lo = groups.indices.map { i in min(hi[i], Int((minRatio * Double(groups[i].units.count) - 1e-9).rounded(.up))) }
        func counts(_ t: Double) -> [Int] {
            groups.indices.map { i in min(hi[i], max(lo[i], Int((ratio(q[i], offset: t) * Double(groups[i].units.count)).rounded()))) }
        }
        func removed(_ n: [Int]) -> Int { n.indices.reduce(0) { acc, i in acc + order[i].prefix(n[i]).reduce(0) { $0 + cost(i, $1) } } }
        let most = removed(hi), least = removed(lo)
        guard want <= most, want >= least else {
            let what = structureMode ? "units" : "parameters"
            throw PruneError(.outOfRange, "scheduler 'saap': the target needs \(want) \(what) removed but minRatio \(minRatio) / maxRatio \(maxRatio) allow \(least)...\(most); widen the bounds or change the ratio")
        }
        var a = -1.0 - spread, b = 2.0 + spread
        for _ in 0..<60 {
            let mid = (a + b) / 2
            if removed(counts(mid)) < want { a = mid } else { b = mid }
        }
        var n = abs(removed(counts(a)) - want) <= abs(removed(counts(b)) - want) ? counts(a) : counts(b)
        var done = removed(n)
        // Fix-up: add (lowest z) or return (highest z) single units while that gets closer to the target.
        while done != want {
            let adding = done < want
            let pick = groups.indices
                .filter { adding ? n[$0] < hi[$0] : n[$0] > lo[$0] }
                .map { i -> (Double, Int) in (z[i][order[i][adding ? n[i] : n[i] - 1]], i) }
                .min { adding ? $0 < $1 : $0 > $1 }
            guard let (_, i) = pick else { break }
            let c = cost(i, order[i][adding ? n[i] : n[i] - 1])
            let next = adding ? done + c : done - c
            guard abs(next - want) < abs(done - want) else { break }
            n[i] += adding ? 1 : -1
            done = next
        }
        var plan = PruningPlan()
        for i in groups.indices where n[i] > 0 { plan.removals[groups[i].id] = Array(order[i].prefix(n[i])).sorted() }
        return plan
    }
}
