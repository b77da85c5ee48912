/// Which units of which groups to remove.
public struct PruningPlan: Sendable {
    /// Removed unit indices per group, keyed by `PruneGroup.id`.
    public var removals: [String: [Int]]

    public init(removals: [String: [Int]] = [:]) { self.removals = removals }

    /// Total parameters the plan removes from these groups: the sum of its units' counts, exact
    /// when no two groups share a slice (KV groups, MLP channels, blocks).
    public func removedParameters(in groups: [PruneGroup]) -> Int {
        groups.reduce(0) { acc, g in acc + (removals[g.id] ?? []).reduce(0) { $0 + g.units[$1].parameterCount } }
    }

    /// Parameters the plan removes from a model of `config`, counted from the widths it leaves:
    /// exact also where groups share slices (a hidden channel crosses every MLP channel). Nil when
    /// a cut group does not say which width it shrinks or the plan leaves no valid model.
    /// `counts` overrides how many units go from the groups it names (not blocks), for a scheduler
    /// weighing other widths.
    public func removedParameters(in groups: [PruneGroup], from config: ModelConfig, counts: [String: Int] = [:]) -> Int? {
        var c = config, dropped = Set<Int>()
        for g in groups {
            let removed = Set(removals[g.id] ?? [])
            guard !removed.isEmpty || (counts[g.id] ?? 0) > 0 else { continue }
            guard let width = g.width else { return nil }
            if case let .layers(layers) = width {
                guard removed.allSatisfy({ layers.indices.contains($0) }) else { return nil }
                dropped.formUnion(removed.map { layers[$0] })
            } else {
                guard (try? c.shrink(width, by: counts[g.id] ?? removed.count, group: g.id)) != nil else { return nil }
            }
        }
        guard let after = try? c.keeping(layers: (0..<config.nLayers).filter { !dropped.contains($0) }) else { return nil }
        return Self.parameters(config) - Self.parameters(after)
    }

    /// Parameters of a model of `config`.
    public static func parameters(_ c: ModelConfig) -> Int {
        TensorNames.layout(for: c).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}
