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

    /// The input columns the plan removes from each layer's attn_output and ffn_down, by tensor name:
    /// the column slices of its removed KV groups and MLP channels (what a compensation repairs;
    /// hidden channels and whole blocks remove none).
    public func removedOutputProjectionColumns(_ groups: [PruneGroup]) -> [String: Set<Int>] {
        var out: [String: Set<Int>] = [:]
        for g in groups where g.kind == .kvGroup || g.kind == .mlpChannel {
            for u in removals[g.id] ?? [] where g.units.indices.contains(u) {
                for s in g.units[u].slices where s.axis == 1 {
                    guard let role = TensorNames.parse(s.tensor)?.role, role.outputBias != nil else { continue }
                    out[s.tensor, default: []].formUnion(s.range)
                }
            }
        }
        return out
    }

    /// Parameters of a model of `config`.
    public static func parameters(_ c: ModelConfig) -> Int {
        TensorNames.layout(for: c).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}
