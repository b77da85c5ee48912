import PruneFramework

/// One MLP (or hidden-channel) group's kept width under `roundTo`: one of the multiples of N up to
/// its full width (or the full width itself), starting at the one nearest the allocation's choice.
struct RoundedWidth {
    var group: Int
    /// The width the allocation chose.
    var chosen: Int
    /// The widths it may take, ascending.
    var options: [Int]
    /// Index of the current width in `options`.
    var at: Int
    /// Parameters of one unit.
    var unitCost: Int

    var kept: Int { options[at] }
}

extension PruneTarget {
    /// `plan` with every MLP width and the hidden width it cuts moved to a multiple of `roundTo`, so
    /// the rows of every matrix that reads them fill quantization blocks: each such group rounds
    /// to the nearest multiple, then single groups move one multiple up or down while that brings
    /// the removed parameters closer to the step's target. The units kept are the
    /// highest-scoring of each group. Groups the plan leaves whole stay whole; KV groups and blocks
    /// are whole units already. Throws when no rounding comes within 2% of the model's parameters
    /// of the target.
    func rounded(_ plan: PruningPlan, groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        guard let n = roundTo else { return plan }
        var widths = try roundedWidths(plan, groups: groups, multiple: n)
        var out = plan
        if structureRatio == nil {
            let want = parametersToRemove(context)
            // Counted from the widths left, so a hidden channel crossing MLP channels counts once.
            let config = context.model.config
            let rounded = Set(widths.map(\.group))
            let others = plan.removedParameters(in: groups.indices.filter { !rounded.contains($0) }.map { groups[$0] })
            let removed = Self.closest(&widths, want: want) { ws in
                let counts = Dictionary(uniqueKeysWithValues: ws.map { (groups[$0.group].id, groups[$0.group].units.count - $0.kept) })
                return plan.removedParameters(in: groups, from: config, counts: counts)
                    ?? others + ws.reduce(0) { $0 + (groups[$1.group].units.count - $1.kept) * $1.unitCost }
            }
            let slack = context.originalParameters / 50
            guard abs(removed - want) <= slack else {
                let pct = { (x: Int) in String(format: "%.2f%%", 100 * Double(x) / Double(context.originalParameters)) }
                throw PruneError(.outOfRange, "scheduler: roundTo \(n) cannot meet the target: widths in multiples of \(n) remove at best \(pct(removed)) of the parameters where this step asks \(pct(want)); lower roundTo or prune more layers")
            }
        }
        for w in widths {
            let g = groups[w.group], remove = g.units.count - w.kept
            out.removals[g.id] = remove > 0 ? Array(ascendingOrder(scores[w.group]).prefix(remove)).sorted() : nil
        }
        return out
    }

    /// The widths every MLP and hidden-channel group the plan cuts may take, starting at the one
    /// nearest the plan's.
    func roundedWidths(_ plan: PruningPlan, groups: [PruneGroup], multiple n: Int) throws -> [RoundedWidth] {
        try groups.enumerated().compactMap { i, g -> RoundedWidth? in
            let what: String
            switch g.width {
            case .mlpChannels(let layer)?: what = "MLP channels of layer \(layer)"
            case .hiddenChannels?: what = "hidden channels"
            default: return nil
            }
            guard let removed = plan.removals[g.id]?.count, removed > 0 else { return nil }
            let units = g.units.count, chosen = units - removed
            guard units >= n else {
                throw PruneError(.outOfRange, "scheduler: roundTo \(n) exceeds the \(units) \(what); choose a roundTo of at most \(units)")
            }
            let options = Array(Set(stride(from: n, through: units, by: n)).union([units])).sorted()
            let at = options.indices.min { (abs(options[$0] - chosen), options[$0]) < (abs(options[$1] - chosen), options[$1]) }!
            return RoundedWidth(group: i, chosen: chosen, options: options, at: at, unitCost: g.units.first?.parameterCount ?? 0)
        }
    }

    /// Moves single groups one width up or down, while that brings the removed parameters
    /// (`removed` of the widths) closer to `want`; returns the removed parameters.
    static func closest(_ widths: inout [RoundedWidth], want: Int, removed: ([RoundedWidth]) -> Int) -> Int {
        var total = removed(widths)
        while true {
            // Every single move, by how far it leaves the total from the target, then by how far
            // the group gets from the width the allocation chose.
            let moves = widths.indices.flatMap { i in [-1, 1].compactMap { step -> (i: Int, to: Int, total: Int, distance: Int)? in
                var ws = widths
                guard ws[i].options.indices.contains(ws[i].at + step) else { return nil }
                ws[i].at += step
                return (i, ws[i].at, removed(ws), abs(ws[i].kept - ws[i].chosen))
            } }
            guard let b = moves.min(by: { (abs($0.total - want), $0.distance) < (abs($1.total - want), $1.distance) }),
                  abs(b.total - want) < abs(total - want) else { return total }
            widths[b.i].at = b.to
            total = b.total
        }
    }
}
