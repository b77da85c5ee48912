import Foundation
import Testing
@testable import PruneFramework
@testable import Strategies

@Suite struct SAAPSchedulerTests {
    func decode<T: Decodable>(_ t: T.Type, _ json: String) throws -> T { try JSONDecoder().decode(T.self, from: Data(json.utf8)) }

    /// Layer l's scores: mean and spread grow with l, so layer 0 is the stable, unimportant one.
    static func scores(_ groups: [PruneGroup]) -> [[Double]] {
        groups.map { g in
            let l = Double(g.layer ?? 0)
            return g.units.indices.map { u in 1 + l + (0.1 + l) * Double(u % 5) / 4 }
        }
    }

    @Test(arguments: [(0.2, 0.0, 0.6), (0.3, 0.1, 0.5), (0.25, 0.05, 0.9), (0.15, 0.0, 0.9)])
    func allocationHonoursBoundsAndTheTotal(ratio: Double, minRatio: Double, maxRatio: Double) throws {
        let m = try tinyModel(layers: 6)
        let groups = try DecoderGrouping(structures: [.kvGroup, .mlpChannel]).groups(for: m)
        let s = try decode(SAAPScheduler.self, #"{"ratio": \#(ratio), "minRatio": \#(minRatio), "maxRatio": \#(maxRatio), "spread": 0.6}"#)
        let ctx = PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount)
        let plan = try s.plan(groups: groups, scores: Self.scores(groups), context: ctx)
        let want = Int((ratio * Double(m.parameterCount)).rounded())
        let biggest = groups.flatMap { $0.units.map(\.parameterCount) }.max()!
        let got = plan.removedParameters(in: groups)
        #expect(abs(got - want) * 2 <= biggest, "removed \(got), want \(want)")
        for g in groups {
            let n = plan.removals[g.id]?.count ?? 0, units = Double(g.units.count)
            #expect(Double(n) <= maxRatio * units + 1e-9 && n < g.units.count, "\(g.id): \(n)/\(g.units.count)")
            #expect(Double(n) >= (minRatio * units - 1e-9).rounded(.up), "\(g.id): \(n)/\(g.units.count)")
        }
        // Stable, unimportant layer 0 loses a larger share of its MLP channels than layer 5.
        let share = { (l: Int) in Double(plan.removals["mlp-channels@\(l)"]?.count ?? 0) / Double(groups.first { $0.id == "mlp-channels@\(l)" }!.units.count) }
        #expect(share(0) > share(5), "layer 0 \(share(0)), layer 5 \(share(5))")
        // Lowest scores go first within a group.
        for g in groups {
            let r = plan.removals[g.id] ?? [], s = Self.scores([g])[0]
            let kept = Set(g.units.indices).subtracting(r)
            if let worstKept = kept.map({ s[$0] }).min(), let bestGone = r.map({ s[$0] }).max() { #expect(bestGone <= worstKept) }
        }
    }

    @Test func structureRatioCountsUnits() throws {
        let m = try tinyModel(layers: 4)
        let groups = try DecoderGrouping(structures: [.mlpChannel]).groups(for: m)
        let s = try decode(SAAPScheduler.self, #"{"structureRatio": 0.25, "maxRatio": 0.5}"#)
        let plan = try s.plan(groups: groups, scores: Self.scores(groups),
                              context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount))
        let total = groups.reduce(0) { $0 + $1.units.count }
        #expect(plan.removals.values.reduce(0) { $0 + $1.count } == Int((0.25 * Double(total)).rounded()))
    }

    @Test func rejectsBadBoundsAndUnreachableTargets() throws {
        for (json, says) in [(#"{"minRatio": 0.5, "maxRatio": 0.4}"#, "maxRatio"), (#"{"maxRatoi": 0.4}"#, "maxRatoi"),
                             (#"{"minRatio": 1}"#, "minRatio")] {
            do {
                _ = try decode(SAAPScheduler.self, json)
                Issue.record("\(json) was accepted")
            } catch let e as PruneError {
                #expect(e.message.contains(says), "\(e.message)")
            }
        }
        let m = try tinyModel(layers: 2)
        let groups = try DecoderGrouping(structures: [.mlpChannel]).groups(for: m)
        let s = try decode(SAAPScheduler.self, #"{"ratio": 0.5, "maxRatio": 0.1}"#)
        #expect { try s.plan(groups: groups, scores: Self.scores(groups),
                             context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount)) } throws: { e in
            (e as? PruneError)?.message.contains("widen the bounds") == true
        }
    }
}

@Suite struct SAAPGroupFineTunerTests {
    @Test func groupsAndRecipeErrors() throws {
        let d = try JSONDecoder().decode(SAAPGroupFineTuner.self, from: Data(#"{"groupSize": 2, "layers": [1, 5]}"#.utf8))
        #expect(try d.layerGroups(6) == [[1, 2], [3, 4], [5]])
        let range = try #require(throws: PruneError.self) { try d.layerGroups(4) }
        #expect(range.code == .outOfRange && range.message.contains("layers = '[1, 5]'") && range.message.contains("at most 3"), "\(range.message)")
        let key = try #require(throws: PruneError.self) { try JSONDecoder().decode(SAAPGroupFineTuner.self, from: Data(#"{"groupsize": 2}"#.utf8)) }
        #expect(key.message.contains("unknown key 'groupsize'") && key.message.contains("groupSize"), "\(key.message)")
    }

    /// saap-group accepts every lora key with lora's ranges, keeps its own per-group defaults, rejects
    /// unknown keys by name, and its encoding is flat and round-trips.
    @Test func acceptsEveryLoRAKeyAndRoundTrips() throws {
        func object(_ v: some Encodable) throws -> [String: JSONValue] {
            try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(v)).object ?? [:]
        }
        #expect(SAAPGroupFineTuner.keys.map(\.name) == ["groupSize"] + LoRAFineTuner.keys.map(\.name))
        let d = try JSONDecoder().decode(SAAPGroupFineTuner.self, from: Data("{}".utf8))
        #expect(d.groupSize == 4 && d.steps == 50 && d.warmupSteps == 5)
        var o = try object(d)
        let groupSize = o.removeValue(forKey: "groupSize")
        #expect(groupSize == .int(4) && o["steps"] == .int(50) && o["warmupSteps"] == .int(5))
        var l = try object(LoRAFineTuner())
        l["steps"] = .int(50)
        l["warmupSteps"] = .int(5)
        #expect(o == l)

        let json = #"""
            {"groupSize": 3, "rank": 4, "alpha": 8, "dropout": 0.1, "targets": ["q", "up"], "layers": [1, 4], "steps": 7,
             "batch": 2, "microBatch": 1, "seqLen": 64, "learningRate": 0.002, "warmupSteps": 1, "weightDecay": 0.01,
             "maxGradNorm": 0.5, "dataset": "ptb", "seed": 9, "loss": {"type": "kl", "temperature": 2, "alpha": 0.5}}
            """#
        let given = try JSONDecoder().decode([String: JSONValue].self, from: Data(json.utf8))
        #expect(Set(given.keys) == Set(SAAPGroupFineTuner.keys.map(\.name)))
        let s = try JSONDecoder().decode(SAAPGroupFineTuner.self, from: Data(json.utf8))
        let lora = try JSONDecoder().decode(LoRAFineTuner.self, from: Data(json.replacingOccurrences(of: #""groupSize": 3, "#, with: "").utf8))
        #expect(s.groupSize == 3 && s.lora.settings == lora.settings && s.layers == [1, 4] && s.seqLen == 64 && s.dataset == "ptb")
        #expect(s.distillation == Distillation(temperature: 2, alpha: 0.5))
        #expect(s.settings(group: 2).seed == 11 && s.settings(group: 0).weightDecay == 0.01)
        let again = try JSONDecoder().decode(SAAPGroupFineTuner.self, from: JSONEncoder().encode(s))
        #expect(try object(again) == object(s))

        for (bad, says) in [(#"{"rnak": 4}"#, "unknown key 'rnak'"), (#"{"groupsize": 2}"#, "unknown key 'groupsize'"),
                            (#"{"dropout": 1}"#, "dropout"), (#"{"targets": ["x"]}"#, "targets[0]"),
                            (#"{"weightDecay": 2}"#, "weightDecay"), (#"{"groupSize": 0}"#, "groupSize")] {
            do {
                _ = try JSONDecoder().decode(SAAPGroupFineTuner.self, from: Data(bad.utf8))
                Issue.record("\(bad) was accepted")
            } catch let e as PruneError {
                #expect(e.message.contains(says), "\(e.message)")
            }
        }
    }

    /// A few steps over two groups lower the loss, and only the adapted layers' target tensors change.
    @Test func trainsGroupsInTurnAndTouchesOnlyThem() throws {
        let model = try tinyModel(layers: 3)
        let before = Array(model.params.buffer)
        let data = (0..<8).map { tokens(12, vocab: 41, seed: UInt64($0 + 10)) }
        let nll0 = try model.nll(tokens: Array(data.joined()), batch: 8, seqLen: 12).mean
        var ft = SAAPGroupFineTuner()
        ft.groupSize = 1
        ft.layers = [1, 2]
        ft.targets = ["q", "down"]
        ft.rank = 4
        ft.steps = 25
        ft.batch = 4
        ft.microBatch = 4
        ft.learningRate = 5e-2
        ft.warmupSteps = 2
        ft.dropout = 0
        var lines: [String] = []
        let r = try ft.train(model, data: data, groups: try ft.layerGroups(3), log: { lines.append($0) })
        #expect(r.losses.count == 50 && lines.count == 2)
        let nll1 = try model.nll(tokens: Array(data.joined()), batch: 8, seqLen: 12).mean
        #expect(nll1 < nll0 - 0.05, "NLL \(nll0) → \(nll1)")
        let changed = Set(model.params.entries.filter { e in
            (e.offset..<(e.offset + e.count)).contains { model.params.buffer[$0] != before[$0] }
        }.map(\.name))
        #expect(changed == [TensorNames.attnQ(1), TensorNames.ffnDown(1), TensorNames.attnQ(2), TensorNames.ffnDown(2)])
    }
}
