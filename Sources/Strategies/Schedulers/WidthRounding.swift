import PruneFramework

/// One MLP group's kept width under `roundTo`: the multiples of N (or the full width) around the
/// width the allocation chose.
struct RoundedWidth {
    var group: Int
    /// The width the allocation chose.
    var chosen: Int
    var down: Int
    var up: Int
    var takeUp: Bool
    /// Parameters of one unit.
    var unitCost: Int

    var kept: Int { takeUp ? up : down }
}

extension PruneTarget {
    /// `plan` with every MLP width it cuts moved to a multiple of `roundTo`: each such group rounds
    /// to the nearest multiple, then single groups switch between rounding down and up while that
    /// brings the removed parameters closer to the step's target. The units kept are the
    /// highest-scoring of each group. Groups the plan leaves whole stay whole; KV groups and blocks
    /// are whole units already. Throws when no rounding comes within 2% of the model's parameters
    /// of the target.
    func rounded(_ plan: PruningPlan, groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        guard let n = roundTo else { return plan }
        var widths = try roundedWidths(plan, groups: groups, multiple: n)
        var out = plan
        if structureRatio == nil {
            let want = parametersToRemove(context)
            let others = plan.removedParameters(in: groups.enumerated().filter { i, _ in !widths.contains { $0.group == i } }.map(\.1))
            let removed = Self.closest(&widths, fixed: others, groups: groups, want: want)
            let slack = context.originalParameters / 50
            guard abs(removed - want) <= slack else {
                let pct = { (x: Int) in String(format: "%.2f%%", 100 * Double(x) / Double(context.originalParameters)) }
                throw PruneError(.outOfRange, "scheduler: roundTo \(n) cannot meet the target: MLP widths in multiples of \(n) remove at best \(pct(removed)) of the parameters where this step asks \(pct(want)); lower roundTo or prune more layers")
            }
        }
        for w in widths {
            let g = groups[w.group], remove = g.units.count - w.kept
            out.removals[g.id] = remove > 0 ? Array(ascendingOrder(scores[w.group]).prefix(remove)).sorted() : nil
        }
        return out
    }

    /// The two candidate widths of every MLP group the plan cuts, starting at the nearer one.
    func roundedWidths(_ plan: PruningPlan, groups: [PruneGroup], multiple n: Int) throws -> [RoundedWidth] {
        try groups.enumerated().compactMap { i, g -> RoundedWidth? in
            guard case .mlpChannels(let layer)? = g.width, let removed = plan.removals[g.id]?.count, removed > 0 else { return nil }
            let units = g.units.count, chosen = units - removed
            guard units >= n else {
                throw PruneError(.outOfRange, "scheduler: roundTo \(n) exceeds the \(units) MLP channels of layer \(layer); choose a roundTo of at most \(units)")
            }
            var down = chosen / n * n, up = chosen % n == 0 ? chosen : min(down + n, units)
            if down == 0 { down = up }
            if chosen % n == 0 { up = down }
            return RoundedWidth(group: i, chosen: chosen, down: down, up: up, takeUp: up - chosen < chosen - down,
                                unitCost: g.units.first?.parameterCount ?? 0)
        }
    }

    /// Switches groups between their two widths, one at a time, while the removed parameters get
    /// closer to `want`; returns the removed parameters. `fixed`: what the other groups remove.
    static func closest(_ widths: inout [RoundedWidth], fixed: Int, groups: [PruneGroup], want: Int) -> Int {
        func removed(_ w: RoundedWidth) -> Int { (groups[w.group].units.count - w.kept) * w.unitCost }
        var total = fixed + widths.reduce(0) { $0 + removed($1) }
        while true {
            // Every single switch, by how far it leaves the total from the target, then by how far
            // the group moves from the width the allocation chose.
            let switches = widths.indices.filter { widths[$0].down != widths[$0].up }.map { i -> (i: Int, total: Int, distance: Int) in
                var s = widths[i]
                s.takeUp.toggle()
                return (i, total - removed(widths[i]) + removed(s), abs(s.kept - s.chosen))
            }
            guard let b = switches.min(by: { (abs($0.total - want), $0.distance) < (abs($1.total - want), $1.distance) }),
                  abs(b.total - want) < abs(total - want) else { return total }
            widths[b.i].takeUp.toggle()
            total = b.total
        }
    }
}
