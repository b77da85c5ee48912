import Foundation
import Testing
@testable import PruneFramework
@testable import Strategies

@Suite struct SchedulerTests {
    func decode<T: Decodable>(_ t: T.Type, _ json: String) throws -> T { try JSONDecoder().decode(T.self, from: Data(json.utf8)) }

    @Test func uniformMeetsTheParameterTargetAndKeepsOneUnit() throws {
        let m = try tinyModel(layers: 4)
        let groups = try DecoderGrouping(structures: [.kvGroup, .mlpChannel]).groups(for: m)
        let scores = groups.map { g in g.units.indices.map { Double($0) } }
        let s = try decode(UniformScheduler.self, #"{"ratio": 0.25}"#)
        let ctx = PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount)
        let plan = try s.plan(groups: groups, scores: scores, context: ctx)
        let removed = Double(plan.removedParameters(in: groups)) / Double(m.parameterCount)
        #expect(abs(removed - 0.25) < 0.05, "removed \(removed)")
        for g in groups { #expect((plan.removals[g.id]?.count ?? 0) < g.units.count) }
        // Lowest scores go first: with scores = index, the removed units are a prefix.
        for (g, r) in plan.removals { #expect(r == Array(0..<r.count), "\(g)") }
    }

    @Test func structureRatioRemovesThatFractionOfEachGroup() throws {
        let m = try tinyModel(layers: 2)
        let groups = try DecoderGrouping(structures: [.mlpChannel]).groups(for: m)
        let s = try decode(UniformScheduler.self, #"{"structureRatio": 0.5}"#)
        let plan = try s.plan(groups: groups, scores: groups.map { $0.units.map { _ in 1 } },
                              context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount))
        #expect(plan.removals["mlp-channels@0"]?.count == 10 && plan.removals["mlp-channels@1"]?.count == 12)
    }

    @Test func globalRemovesTheLowestNormalisedScoresFirst() throws {
        let m = try tinyModel(layers: 2)
        let groups = try DecoderGrouping(structures: [.mlpChannel]).groups(for: m)
        // Layer 1's channels score far lower: with no normalisation they all go first (all but one).
        let scores = [groups[0].units.map { _ in 10.0 }, groups[1].units.indices.map { Double($0) / 10 }]
        let s = try decode(GlobalScheduler.self, #"{"ratio": 0.1, "normalization": "none"}"#)
        let plan = try s.plan(groups: groups, scores: scores,
                              context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount))
        #expect(plan.removals["mlp-channels@0"] == nil)
        #expect((plan.removals["mlp-channels@1"]?.count ?? 0) > 0)
    }

    @Test func iterativeStepsReachTheCumulativeTarget() throws {
        let s = try decode(IterativeScheduler.self, #"{"ratio": 0.3, "steps": 3}"#)
        var m = try tinyModel(layers: 3)
        let original = m.parameterCount
        for step in 0..<s.steps {
            let groups = try DecoderGrouping(structures: [.mlpChannel]).groups(for: m)
            let plan = try s.plan(groups: groups, scores: groups.map { g in g.units.indices.map(Double.init) },
                                  context: PlanContext(model: m, step: step, steps: s.steps, originalParameters: original))
            m = try Surgery.apply(plan, groups: groups, to: m)
        }
        let removed = 1 - Double(m.parameterCount) / Double(original)
        #expect(abs(removed - 0.3) < 0.05, "removed \(removed)")
    }

    /// A model with MLP widths of 64, so multiples of 8 and 16 leave room to choose.
    func wideModel() throws -> Transformer {
        let c = ModelConfig(vocabSize: 41, hiddenSize: 16, nLayers: 4, headDim: 4, nHead: [6, 6, 6, 6], nKVHead: [3, 3, 3, 3],
                            ffnDim: [64, 64, 64, 64], contextLength: 64)
        return try Transformer(randomWith: c, seed: 7)
    }

    @Test(arguments: [#"{"type": "uniform", "ratio": 0.3, "roundTo": 8}"#,
                      #"{"type": "global", "ratio": 0.3, "roundTo": 16, "normalization": "none"}"#,
                      #"{"type": "saap", "ratio": 0.3, "roundTo": 8}"#,
                      #"{"type": "iterative", "ratio": 0.3, "roundTo": 8, "steps": 1, "allocation": "global"}"#])
    func roundToKeepsPrunedMLPWidthsAtMultiples(json: String) throws {
        let m = try wideModel()
        let scheduler = try decode(AnyScheduler.self, json).scheduler
        let n = try #require(scheduler.roundTo)
        let groups = try DecoderGrouping().groups(for: m)
        var rng = SplitMix64(seed: 9)
        let scores = groups.map { g in g.units.map { _ in Double(rng.nextUnit()) } }
        let ctx = PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount)
        let plan = try scheduler.plan(groups: groups, scores: scores, context: ctx)
        var cut = 0
        for (g, s) in zip(groups, scores) where g.kind == .mlpChannel {
            guard let r = plan.removals[g.id] else { continue }
            cut += 1
            #expect((g.units.count - r.count) % n == 0, "\(g.id) keeps \(g.units.count - r.count)")
            // The units that go are the lowest-scoring of their group.
            #expect(Set(r) == Set(s.indices.sorted { s[$0] < s[$1] }.prefix(r.count)), "\(g.id)")
        }
        #expect(cut > 0)
        let removed = Double(plan.removedParameters(in: groups)) / Double(m.parameterCount)
        #expect(abs(removed - 0.3) <= 0.02, "removed \(removed)")
        let pruned = try Surgery.apply(plan, groups: groups, to: m)
        #expect(pruned.config.ffnDim.allSatisfy { $0 == 64 || $0 % n == 0 }, "\(pruned.config.ffnDim)")
    }

    /// The hidden width is rounded too: every matrix that reads the residual stream has rows of it.
    @Test func roundToAlsoRoundsTheHiddenWidth() throws {
        let m = try wideModel()
        let groups = try DecoderGrouping(structures: [.hiddenChannel, .mlpChannel]).groups(for: m)
        let scores = groups.map { g in g.units.indices.map { Double(($0 * 37) % 11) } }
        let s = try decode(UniformScheduler.self, #"{"ratio": 0.55, "roundTo": 8}"#)
        let plan = try s.plan(groups: groups, scores: scores, context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount))
        let pruned = try Surgery.apply(plan, groups: groups, to: m)
        #expect(pruned.config.hiddenSize == 8 && pruned.config.ffnDim.allSatisfy { $0 % 8 == 0 }, "\(pruned.config)")
    }

    /// A hidden channel crosses every MLP channel: uniform counts what the pruned widths leave, so
    /// the model that surgery makes has the target's size, not less.
    @Test func uniformCountsHiddenAndMLPChannelsOnce() throws {
        let m = try wideModel()
        let groups = try DecoderGrouping(structures: [.hiddenChannel, .mlpChannel]).groups(for: m)
        let scores = groups.map { g in g.units.indices.map { Double(($0 * 37) % 11) } }
        let plan = try decode(UniformScheduler.self, #"{"ratio": 0.4}"#)
            .plan(groups: groups, scores: scores, context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount))
        let pruned = try Surgery.apply(plan, groups: groups, to: m)
        let removed = 1 - Double(pruned.parameterCount) / Double(m.parameterCount)
        #expect(abs(removed - 0.4) < 0.03, "removed \(removed)")
        #expect(plan.removedParameters(in: groups, from: m.config) == m.parameterCount - pruned.parameterCount)
    }

    @Test func aRoundToThatCannotBeMetIsNamed() throws {
        let m = try wideModel()
        let ctx = PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount)
        let mlp = try DecoderGrouping(structures: [.mlpChannel]).groups(for: m)
        let scores = mlp.map { g in g.units.indices.map(Double.init) }
        // 64 channels in multiples of 64: an MLP keeps all or nothing, and nothing is not allowed.
        let whole = try decode(UniformScheduler.self, #"{"ratio": 0.3, "roundTo": 64}"#)
        let e = try #require(throws: PruneError.self) { try whole.plan(groups: mlp, scores: scores, context: ctx) }
        #expect(e.code == .outOfRange && e.message.contains("roundTo 64 cannot meet the target"), "\(e.message)")
        let wide = try decode(UniformScheduler.self, #"{"ratio": 0.3, "roundTo": 128}"#)
        let w = try #require(throws: PruneError.self) { try wide.plan(groups: mlp, scores: scores, context: ctx) }
        #expect(w.message.contains("roundTo 128 exceeds the 64 MLP channels of layer 0"), "\(w.message)")
        for bad in [#"{"ratio": 0.3, "roundTo": 1}"#, #"{"ratio": 0.3, "roundTo": "64"}"#] {
            let d = try #require(throws: PruneError.self) { try decode(UniformScheduler.self, bad) }
            #expect(d.message.contains("roundTo"), "\(d.message)")
        }
    }
}

/// Any of the built-in structure schedulers, by its "type".
struct AnyScheduler: Decodable {
    let scheduler: any Scheduler

    init(from decoder: Decoder) throws {
        let r = Registry<any Scheduler>(stage: "scheduler")
        r.register(UniformScheduler.self) { $0 }
        r.register(GlobalScheduler.self) { $0 }
        r.register(SAAPScheduler.self) { $0 }
        r.register(IterativeScheduler.self) { $0 }
        scheduler = try r.decode(from: decoder)
    }
}
