import Foundation
import PruneFramework

extension PruneRun {
    /// SparseGPT's sequential mode for structures (`calibration.sequential`): the scheduler's plan on
    /// the dense model fixes how many units each group loses; then, layer by layer, a layer's
    /// groups are scored on the inputs the already-pruned layers before it produce, its lowest-scoring
    /// units are zeroed so the next layer sees the pruned output, and the plan keeps them. Returns
    /// the plan, with every weight as it was (the zeroed units are restored).
    func sequentialPlan(_ model: Transformer, groups: [PruneGroup], densePlan: PruningPlan, sequences: [[Int32]],
                        suffix: String) throws -> PruningPlan {
        let criterion = recipe.criterion, name = type(of: criterion).name
        let byLayer = try Self.groupsByLayer(groups)
        let stats = ActivationStatistics(sampleRows: Calibration.sampleRows(for: criterion), seed: UInt64(recipe.calibration.seed))
        var plan = PruningPlan()
        var restore: [(name: String, values: [Float])] = []
        func restorePrevious() {
            for (t, v) in restore { model.params.view(t).update(fromContentsOf: v) }
            model.params.markRestored(restore.map(\.name))
            model.params.release(restore.map(\.name))
            restore = []
        }
        try timed("score layer by layer on the pruned layers' outputs\(suffix)") {
            let bar = ProgressBar(total: model.config.nLayers, label: "  layers", unit: "layer")
            try model.layerByLayer(sequences: sequences, observer: stats) { l in
                defer { bar.update(l + 1) }
                restorePrevious()
                guard let gs = byLayer[l] else { return }
                let ctx = ScoringContext(model: model, statistics: stats, seed: UInt64(recipe.calibration.seed),
                                         calibration: sequences, groups: groups)
                var layerPlan = PruningPlan()
                for g in gs {
                    let s = try criterion.scores(for: g, context: ctx)
                    guard s.count == g.units.count, s.allSatisfy(\.isFinite) else {
                        throw PruneError(.badFormat, "criterion '\(name)' returned \(s.count) scores for group '\(g.id)' with \(g.units.count) units, or a non-finite score")
                    }
                    let n = densePlan.removals[g.id]?.count ?? 0
                    layerPlan.removals[g.id] = Array(s.indices.sorted { (s[$0], $0) < (s[$1], $1) }.prefix(n)).sorted()
                }
                model.params.release()
                let touched = try Self.tensors(of: layerPlan, gs, model)
                restore = touched.map { ($0, model.params.withValues($0) { Array($0) }) }
                try Surgery.mask(layerPlan, groups: gs, in: model)
                plan.removals.merge(layerPlan.removals) { a, _ in a }
            }
            restorePrevious()
            bar.finish()
        }
        return plan
    }

    /// Checks before any work that `calibration.sequential` can apply: a structure run's criterion
    /// needs no gradients (they come from the dense model at once) and its groups lie in one layer.
    func checkSequential(_ config: ModelConfig) throws {
        guard recipe.calibration.sequential, try maskMode() == nil else { return }
        let inputs = recipe.criterion.inputs
        if inputs.contains(.gradients) || inputs.contains(.fisher) {
            throw PruneError(.unsupported, "recipe: calibration.sequential scores layer by layer on activations, but criterion '\(type(of: recipe.criterion).name)' reads gradients of the whole model; remove calibration.sequential or choose an activation criterion (wanda, flap, magnitude, ...)")
        }
        if let groups = try recipe.grouping.groups(for: config) { _ = try Self.groupsByLayer(groups) }
    }

    /// The groups of each layer; throws for a group that spans layers (hidden channels, blocks).
    static func groupsByLayer(_ groups: [PruneGroup]) throws -> [Int: [PruneGroup]] {
        var out: [Int: [PruneGroup]] = [:]
        for g in groups {
            let layers = Set(g.units.flatMap { $0.slices.map { TensorNames.layer(of: $0.tensor) } })
            guard layers.count == 1, let only = layers.first, let l = only else {
                throw PruneError(.unsupported, "recipe: calibration.sequential scores one layer at a time, but group '\(g.id)' spans \(layers.count) layers (hidden channels or whole blocks); choose kv-groups and mlp-channels, or remove calibration.sequential")
            }
            out[l, default: []].append(g)
        }
        return out
    }

    /// The tensors the plan's units of `groups` cut.
    static func tensors(of plan: PruningPlan, _ groups: [PruneGroup], _ model: Transformer) throws -> [String] {
        var names: Set<String> = []
        for g in groups { for u in plan.removals[g.id] ?? [] { names.formUnion(g.units[u].slices.map(\.tensor)) } }
        return names.sorted()
    }
}
