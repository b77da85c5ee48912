import Foundation

/// Applies a pruning plan: physically removes rows and columns (or whole layers), or zeroes them.
public enum Surgery {
    /// What a plan removes: rows and columns of each tensor, whole layers, and the widths that remain
    /// (before the dropped layers leave the per-layer arrays). Each group says which width it shrinks.
    struct Cuts {
        var rows: [String: Set<Int>] = [:]
        var cols: [String: Set<Int>] = [:]
        var droppedLayers: Set<Int> = []
        var config: ModelConfig
    }

    static func cuts(_ plan: PruningPlan, _ groups: [PruneGroup], _ config: ModelConfig) throws -> Cuts {
        var c = Cuts(config: config)
        for g in groups {
            let removed = Set(plan.removals[g.id] ?? []).sorted()
            guard !removed.isEmpty else { continue }
            if let u = removed.first(where: { !g.units.indices.contains($0) }) {
                throw PruneError(.outOfRange, "pruning plan: unit \(u) of group '\(g.id)' does not exist (it has \(g.units.count))")
            }
            guard let width = g.width else {
                throw PruneError(.unsupported, "pruning plan: group '\(g.id)' does not say which width its units shrink; its grouping must set PruneGroup.width")
            }
            if case let .layers(layers) = width {
                guard layers.count == g.units.count else {
                    throw PruneError(.badFormat, "pruning plan: group '\(g.id)' names \(layers.count) layers for \(g.units.count) units")
                }
                c.droppedLayers.formUnion(removed.map { layers[$0] })
                continue
            }
            try c.config.shrink(width, by: removed.count, group: g.id)
            for s in removed.flatMap({ g.units[$0].slices }) {
                if s.axis == 0 { c.rows[s.tensor, default: []].formUnion(s.range) } else { c.cols[s.tensor, default: []].formUnion(s.range) }
            }
        }
        return c
    }

    /// A new, smaller model without the plan's units. Keeps head_dim; widths may differ per layer.
    public static func apply(_ plan: PruningPlan, groups: [PruneGroup], to model: Transformer) throws -> Transformer {
        let cut = try cuts(plan, groups, model.config)
        let keptLayers = (0..<model.config.nLayers).filter { !cut.droppedLayers.contains($0) }
        let c = try cut.config.keeping(layers: keptLayers)
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
            try copy(src, se.shape, from: model.params, keeping: cut, to: store.pointer(e.name), shape: e.shape)
        }
        return try Transformer(config: c, params: store)
    }

    /// Copies the rows and columns of `src` that `cut` keeps into `to`, row-major.
    static func copy(_ src: String, _ srcShape: [Int], from params: ParameterStore, keeping cut: Cuts,
                     to: UnsafeMutablePointer<Float>, shape: [Int]) throws {
        let rows = (0..<srcShape[0]).filter { !(cut.rows[src]?.contains($0) ?? false) }
        let cols = srcShape.count == 2 ? (0..<srcShape[1]).filter { !(cut.cols[src]?.contains($0) ?? false) } : [0]
        guard rows.count * cols.count == shape.reduce(1, *) else {
            throw PruneError(.shapeMismatch, "surgery: tensor '\(src)' keeps \(rows.count)×\(cols.count) values, the pruned config needs \(shape)")
        }
        let from = params.pointer(src)
        let width = srcShape.count == 2 ? srcShape[1] : 1
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

    /// Zeroes the plan's slices in place (mask mode): the model keeps its shape.
    public static func mask(_ plan: PruningPlan, groups: [PruneGroup], in model: Transformer) throws {
        let cut = try cuts(plan, groups, model.config)
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

extension ModelConfig {
    /// Removes `n` units of `width` (a block's layers are dropped separately, by `keeping(layers:)`).
    mutating func shrink(_ width: WidthChange, by n: Int, group: String) throws {
        func layer(_ l: Int) throws -> Int {
            guard (0..<nLayers).contains(l) else {
                throw PruneError(.outOfRange, "pruning plan: group '\(group)' names layer \(l); the model has \(nLayers)")
            }
            return l
        }
        switch width {
        case let .kvHeads(l, q):
            nKVHead[try layer(l)] -= n
            nHead[l] -= n * q
        case let .mlpChannels(l): ffnDim[try layer(l)] -= n
        case .hiddenChannels: hiddenSize -= n
        case .layers: break
        }
    }

    /// The config of the `layers` that remain, each keeping at least one KV group and MLP channel.
    func keeping(layers: [Int]) throws -> ModelConfig {
        guard !layers.isEmpty else { throw PruneError(.outOfRange, "pruning plan removes every block; keep at least one") }
        guard hiddenSize >= 1 else { throw PruneError(.outOfRange, "pruning plan removes every hidden channel") }
        for l in layers {
            guard nKVHead[l] >= 1 else {
                throw PruneError(.outOfRange, "pruning plan removes every KV group of layer \(l); a layer keeps at least one unless the whole block goes")
            }
            guard ffnDim[l] >= 1 else { throw PruneError(.outOfRange, "pruning plan removes every MLP channel of layer \(l)") }
        }
        var c = self
        c.nLayers = layers.count
        c.nHead = layers.map { nHead[$0] }
        c.nKVHead = layers.map { nKVHead[$0] }
        c.ffnDim = layers.map { ffnDim[$0] }
        return c
    }
}
