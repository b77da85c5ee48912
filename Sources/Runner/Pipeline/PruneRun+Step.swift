import Foundation
import PruneFramework

extension PruneRun {
    /// One pruning step: group the model, collect what the criterion reads, score, and cut. A
    /// structure scheduler's plan goes through `Surgery` and gives a smaller model; a mask scheduler
    /// zeroes single weights of the same model in place (`maskWeights`).
    func pruneStep(_ model: Transformer, step: Int, steps: Int, sequences: [[Int32]], originalParameters: Int) throws -> Transformer {
        let suffix = steps > 1 ? " (step \(step + 1)/\(steps))" : ""
        let groups = try recipe.grouping.groups(for: model)
        if let mode = try maskMode() {
            maskSummary = try maskWeights(model, groups: groups, mode: mode, sequences: sequences)
            return model
        }
        let criterion = recipe.criterion, name = type(of: criterion).name
        let ctx = try scoringContext(model, groups: groups, sequences: sequences, criterion: criterion, structures: true, suffix: suffix)
        let scores = try timed("score \(groups.count) groups with '\(name)'\(suffix)") {
            let bar = ProgressBar(total: groups.count, label: "  score", unit: "group")
            defer { bar.finish() }
            return try groups.enumerated().map { i, g -> [Double] in
                defer { bar.update(i + 1) }
                let s = try criterion.scores(for: g, context: ctx)
                // Tensors the criterion read are read again when needed: a lazy model keeps none.
                model.params.release()
                guard s.count == g.units.count, s.allSatisfy(\.isFinite) else {
                    throw PruneError(.badFormat, "criterion '\(name)' returned \(s.count) scores for group '\(g.id)' with \(g.units.count) units, or a non-finite score")
                }
                return s
            }
        }
        let planCtx = PlanContext(model: model, step: step, steps: steps, originalParameters: originalParameters)
        var plan = try recipe.scheduler.plan(groups: groups, scores: scores, context: planCtx)
        if recipe.calibration.sequential {
            if criterion.inputs.contains(.activationStatistics) || criterion.inputs.contains(.activationSamples) {
                plan = try sequentialPlan(model, groups: groups, densePlan: plan, sequences: sequences, suffix: suffix)
            } else {
                log("  calibration.sequential: '\(name)' reads no activations, so every layer is scored at once")
            }
        }
        if let c = recipe.compensator { try compensate(model, with: c, plan: plan, groups: groups, sequences: sequences, suffix: suffix) }
        var cut = model
        if let c = criterion as? any CompensatingCriterion, c.compensates {
            cut = try compensate(model, with: c, plan: plan, groups: groups, context: ctx, suffix: suffix)
        }
        return try timed("remove \(plan.removals.values.reduce(0) { $0 + $1.count }) units\(suffix)") {
            try Surgery.apply(plan, groups: groups, to: cut)
        }
    }

    /// Runs the recipe's compensator on the model before the plan's units are cut from it.
    func compensate(_ model: Transformer, with c: any Compensator, plan: PruningPlan, groups: [PruneGroup], sequences: [[Int32]],
                    suffix: String) throws {
        let line = try timed("compensate with '\(type(of: c).name)'\(suffix)") {
            let bar = ProgressBar(total: model.config.nLayers, label: "  compensate", unit: "layer")
            defer { bar.finish() }
            let ctx = CompensationContext(calibration: sequences, communicator: c.isDataParallel ? sharing() : SingleProcess(), log: log) { done, total in
                bar.update(done, total: total)
            }
            return try c.compensate(model, plan: plan, groups: groups, context: ctx)
        }
        log("  " + line)
    }

    /// What `criterion` reads, collected once per step: the step's groups, activation statistics (and
    /// samples) when it declares them and `statistics` is true, and gradients when it declares them.
    func scoringContext(_ model: Transformer, groups: [PruneGroup], sequences: [[Int32]], criterion: any Criterion,
                        statistics: Bool = true, structures: Bool = false, suffix: String) throws -> ScoringContext {
        var stats: ActivationStatistics?
        if statistics && (criterion.inputs.contains(.activationStatistics) || criterion.inputs.contains(.activationSamples)) {
            stats = try timed("calibrate\(suffix)") {
                let bar = ProgressBar(total: 1, label: "  calibrate", unit: "block")
                defer { bar.finish() }
                let rows = Calibration.sampleRows(for: criterion)
                let comm = Calibration.sharesStatistics(sampleRows: rows, communicator: communicator) ? sharing() : SingleProcess()
                return try Calibration.statistics(model: model, sequences: sequences, sampleRows: rows, seed: UInt64(recipe.calibration.seed),
                                                  communicator: comm) { done, total in bar.update(done, total: total) }
            }
        }
        // A criterion that reads channel sums gets them block by block, without the full gradient
        // (structure schedulers; a mask scheduler scores single weights and needs it).
        if let c = criterion as? any ChannelSumCriterion, structures, !residentWeights {
            let sums = try channelSums(c, model: model, groups: groups, sequences: sequences, suffix: suffix)
            return ScoringContext(model: model, statistics: stats, seed: UInt64(recipe.calibration.seed),
                                  calibration: sequences, groups: groups, channelSums: sums)
        }
        let grads = try gradientsIfNeeded(criterion.inputs, model: model, sequences: sequences,
                                          microBatch: criterion.gradientMicroBatch, suffix: suffix)
        return ScoringContext(model: model, statistics: stats, seed: UInt64(recipe.calibration.seed), gradients: grads,
                              calibration: sequences, groups: groups)
    }
}
