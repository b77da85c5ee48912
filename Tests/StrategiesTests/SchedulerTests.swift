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
}
