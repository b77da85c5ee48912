import Foundation

/// Applies a pruning plan: physically removes rows and columns (or whole layers), or zeroes them.
public enum Surgery {
    /// Rows and columns of each tensor that a plan removes, and the layers it drops.
    struct Cuts {
        var rows: [String: Set<Int>] = [:]
        var cols: [String: Set<Int>] = [:]
        var droppedLayers: Set<Int> = []
    }

    static func cuts(_ plan: PruningPlan, _ groups: [PruneGroup]) throws -> Cuts {
        var c = Cuts()
        for g in groups {
            for u in plan.removals[g.id] ?? [] {
                guard g.units.indices.contains(u) else {
                    throw PruneError(.outOfRange, "pruning plan: unit \(u) of group '\(g.id)' does not exist (it has \(g.units.count))")
                }
                if g.kind == .block, let l = layerOf(g.units[u]) {
                    c.droppedLayers.insert(l)
                    continue
                }
                for s in g.units[u].slices {
                    if s.axis == 0 { c.rows[s.tensor, default: []].formUnion(s.range) } else { c.cols[s.tensor, default: []].formUnion(s.range) }
                }
            }
        }
        return c
    }

    static func layerOf(_ u: PruneUnit) -> Int? {
        u.slices.first.flatMap { TensorNames.layer(of: $0.tensor) }
    }

    /// A new, smaller model without the plan's units. Keeps head_dim; widths may differ per layer.
    public static func apply(_ plan: PruningPlan, groups: [PruneGroup], to model: Transformer) throws -> Transformer {
        let cut = try cuts(plan, groups)
        let old = model.config
        var c = old
        let keptLayers = (0..<old.nLayers).filter { !cut.droppedLayers.contains($0) }
        guard !keptLayers.isEmpty else { throw PruneError(.outOfRange, "pruning plan removes every block; keep at least one") }
        c.nLayers = keptLayers.count
        c.hiddenSize = old.hiddenSize - (cut.cols[TensorNames.tokenEmbedding]?.count ?? 0)
        c.nHead = []
        c.nKVHead = []
        c.ffnDim = []
        for l in keptLayers {
            let kvRemoved = (cut.rows[TensorNames.attnK(l)]?.count ?? 0) / old.headDim
            let qRemoved = (cut.rows[TensorNames.attnQ(l)]?.count ?? 0) / old.headDim
            let nKV = old.nKVHead[l] - kvRemoved
            guard nKV >= 1 else {
                throw PruneError(.outOfRange, "pruning plan removes every KV group of layer \(l); a layer keeps at least one unless the whole block goes")
            }
            let ffn = old.ffnDim[l] - (cut.rows[TensorNames.ffnGate(l)]?.count ?? 0)
            guard ffn >= 1 else { throw PruneError(.outOfRange, "pruning plan removes every MLP channel of layer \(l)") }
            c.nKVHead.append(nKV)
            c.nHead.append(old.nHead[l] - qRemoved)
            c.ffnDim.append(ffn)
        }
        // Map each new tensor name to its source name (layers renumbered after dropped blocks).
        var source: [String: String] = [:]
        for (name, _) in TensorNames.layout(for: c) {
            if case let (n?, role)? = TensorNames.parse(name) {
                source[name] = TensorNames.name(role, keptLayers[n])
            } else {
                source[name] = name
            }
        }
        let store = ParameterStore(layout: TensorNames.layout(for: c))
        for e in store.entries {
            guard let src = source[e.name], let se = model.params.entry(src) else {
                throw PruneError(.badFormat, "surgery: no source tensor for '\(e.name)'")
            }
            let rows = (0..<se.shape[0]).filter { !(cut.rows[src]?.contains($0) ?? false) }
            let cols = se.shape.count == 2 ? (0..<se.shape[1]).filter { !(cut.cols[src]?.contains($0) ?? false) } : [0]
            guard rows.count * cols.count == e.count else {
                throw PruneError(.shapeMismatch, "surgery: tensor '\(src)' keeps \(rows.count)×\(cols.count) values, the pruned config needs \(e.shape)")
            }
            let from = model.params.pointer(src), to = store.pointer(e.name)
            let width = se.shape.count == 2 ? se.shape[1] : 1
            var i = 0
            for r in rows {
                if cols.count == width {
                    (to + i).update(from: from + r * width, count: width)
                    i += width
                } else {
                    for col in cols {
                        to[i] = from[r * width + col]
                        i += 1
                    }
                }
            }
        }
        return try Transformer(config: c, params: store)
    }

    /// Zeroes the plan's slices in place (mask mode): the model keeps its shape.
    public static func mask(_ plan: PruningPlan, groups: [PruneGroup], in model: Transformer) throws {
        let cut = try cuts(plan, groups)
        for e in model.params.entries {
            let p = model.params.pointer(e.name)
            let width = e.shape.count == 2 ? e.shape[1] : 1
            if case let (l?, role)? = TensorNames.parse(e.name), cut.droppedLayers.contains(l) {
                // A masked block contributes nothing: zero the output projections.
                if role == .attnOutput || role == .ffnDown { p.update(repeating: 0, count: e.count) }
                continue
            }
            for r in cut.rows[e.name] ?? [] { (p + r * width).update(repeating: 0, count: width) }
            for col in cut.cols[e.name] ?? [] {
                for r in 0..<e.shape[0] { p[r * width + col] = 0 }
            }
        }
        model.params.markModified()
    }
}
