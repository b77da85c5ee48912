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
    ///
    /// From a lazy model the result is lazy too: each tensor is cut from the model's tensor when it
    /// is read, so pruning holds no second copy of the weights. From a resident model the cut
    /// tensors are copied into a new resident store.
    public static func apply(_ plan: PruningPlan, groups: [PruneGroup], to model: Transformer) throws -> Transformer {
        let cut = try cuts(plan, groups, model.config)
        let keptLayers = (0..<model.config.nLayers).filter { !cut.droppedLayers.contains($0) }
        let c = try cut.config.keeping(layers: keptLayers)
        let params = model.params
        let kept = try TensorNames.layout(for: c).map { name, shape -> (String, [Int], Kept) in
            // Layers are renumbered after dropped blocks.
            var src = name
            if case let (n?, role)? = TensorNames.parse(name) { src = TensorNames.name(role, keptLayers[n]) }
            guard let se = params.entry(src) else { throw PruneError(.badFormat, "surgery: no source tensor for '\(name)'") }
            return (name, shape, try Kept(src, se.shape, keeping: cut, shape: shape))
        }
        if params.isLazy {
            return try Transformer(config: c, params: ParameterStore(lazy: kept.map { name, shape, k in
                (name, shape, { rows, into in try k.read(rows, from: params, into: into) })
            }))
        }
        let store = ParameterStore(layout: kept.map { ($0.0, $0.1) })
        for (name, _, k) in kept {
            try k.read(0..<k.rows.count, from: params, into: store.pointer(name))
        }
        return try Transformer(config: c, params: store)
    }

    /// The rows and columns of a source tensor that a cut keeps. A vector is one row whose kept
    /// elements are its columns.
    struct Kept: Sendable {
        let source: String
        let rows: [Int]
        /// nil: every column.
        let cols: [Int]?
        let width: Int

        init(_ src: String, _ srcShape: [Int], keeping cut: Cuts, shape: [Int]) throws {
            source = src
            let keptRows = (0..<srcShape[0]).filter { !(cut.rows[src]?.contains($0) ?? false) }
            if srcShape.count == 2 {
                width = srcShape[1]
                rows = keptRows
                let c = (0..<width).filter { !(cut.cols[src]?.contains($0) ?? false) }
                cols = c.count == width ? nil : c
            } else {
                width = srcShape[0]
                rows = [0]
                cols = keptRows.count == width ? nil : keptRows
            }
            let kept = srcShape.count == 2 ? (rows.count, cols?.count ?? width) : (cols?.count ?? width, 1)
            guard kept.0 * kept.1 == shape.reduce(1, *) else {
                throw PruneError(.shapeMismatch, "surgery: tensor '\(src)' keeps \(kept.0)×\(kept.1) values, the pruned config needs \(shape)")
            }
        }

        /// Writes rows `r` of the cut tensor into `into`, reading runs of consecutive source rows.
        func read(_ r: Range<Int>, from params: ParameterStore, into: UnsafeMutablePointer<Float>) throws {
            let outWidth = cols?.count ?? width, maxRun = cols == nil ? Int.max : max(1, (1 << 18) / max(width, 1))
            let scratch = cols == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: min(maxRun, r.count) * width)
            defer { scratch?.deallocate() }
            var i = r.lowerBound
            while i < r.upperBound {
                var j = i + 1
                while j < r.upperBound, j - i < maxRun, rows[j] == rows[j - 1] + 1 { j += 1 }
                let out = into + (i - r.lowerBound) * outWidth
                guard let cols, let scratch else {
                    try params.readRows(source, rows[i]..<(rows[j - 1] + 1), into: out)
                    i = j
                    continue
                }
                try params.readRows(source, rows[i]..<(rows[j - 1] + 1), into: scratch)
                for row in 0..<(j - i) {
                    let s = scratch + row * width, o = out + row * outWidth
                    for (n, col) in cols.enumerated() { o[n] = s[col] }
                }
                i = j
            }
        }
    }

    /// Zeroes the plan's slices in place (mask mode): the model keeps its shape. Returns the
    /// tensors it changed; only they are read.
    @discardableResult
    public static func mask(_ plan: PruningPlan, groups: [PruneGroup], in model: Transformer) throws -> [String] {
        let cut = try cuts(plan, groups, model.config)
        var changed: [String] = []
        for e in model.params.entries {
            let width = e.shape.count == 2 ? e.shape[1] : 1
            if case let (l?, role)? = TensorNames.parse(e.name), cut.droppedLayers.contains(l) {
                // A masked block contributes nothing: zero the output projections and their biases.
                if role == .attnOutput || role == .ffnDown || role.outputBiasOf != nil {
                    model.params.pointer(e.name).update(repeating: 0, count: e.count)
                    changed.append(e.name)
                }
                continue
            }
            guard cut.rows[e.name] != nil || cut.cols[e.name] != nil else { continue }
            let p = model.params.pointer(e.name)
            for r in cut.rows[e.name] ?? [] { (p + r * width).update(repeating: 0, count: width) }
            for col in cut.cols[e.name] ?? [] {
                for r in 0..<e.shape[0] { p[r * width + col] = 0 }
            }
            changed.append(e.name)
        }
        model.params.markModified(changed)
        return changed
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
