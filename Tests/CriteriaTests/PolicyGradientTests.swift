import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct PolicyGradientTests {
    func tinyModel(seed: UInt64 = 3) throws -> Transformer {
        let c = ModelConfig(vocabSize: 37, hiddenSize: 16, nLayers: 2, headDim: 4, nHead: [4, 4], nKVHead: [2, 2], ffnDim: [12, 12], contextLength: 32)
        return try Transformer(randomWith: c, seed: seed, scale: 0.3)
    }

    /// Every KV group and MLP channel of the model, as the decoder grouping gives them.
    func decoderGroups(_ m: Transformer) -> [PruneGroup] {
        (0..<m.config.nLayers).flatMap { [DecoderStructures.kvGroups(m.config, layer: $0), DecoderStructures.mlpChannels(m.config, layer: $0)] }
    }

    func sequences(_ n: Int, length: Int, seed: UInt64 = 5) -> [[Int32]] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (0..<length).map { _ in Int32(rng.next() % 37) } }
    }

    @Test func onAToyObjectiveItConvergesToTheBestMask() throws {
        // Removing unit i costs w_i; keeping 4 of 10, the best mask keeps the 4 largest w.
        let w: [Double] = [0.3, 1.0, 0.1, 0.8, 0.2, 0.9, 0.05, 0.4, 0.7, 0.15]
        let best = Set([1, 5, 3, 8])
        // Start from a misleading initialisation that favours the worst units.
        let initial = w.map { 1 - $0 }
        let (s, losses) = try PolicyGradientCriterion.optimize(
            initial: initial, costs: [Double](repeating: 1, count: 10), keep: 4, steps: 800, masks: 8, lr: 0.5,
            momentum: 0.9, seed: 11) { ms in
            ms.map { m in zip(w, m).reduce(0) { $0 + ($1.1 ? 0 : $1.0) } }
        }
        let top = Set(s.indices.sorted { s[$0] > s[$1] }.prefix(4))
        #expect(top == best)
        for i in s.indices { #expect(best.contains(i) ? s[i] > 0.8 : s[i] < 0.2) }
        // The expected loss of the learned distribution nears the best mask's, Σ of the six smallest w,
        // from far above it at the start.
        let optimum = w.sorted().prefix(6).reduce(0, +)
        let expected = zip(w, s).reduce(0) { $0 + $1.0 * (1 - $1.1) }
        #expect(losses.count == 800)
        #expect(expected < optimum + 0.2 && losses[0] > optimum + 0.8)
    }

    @Test func projectionMeetsTheParameterBudget() {
        var rng = SplitMix64(seed: 2)
        let s = (0..<50).map { _ in Double(rng.nextUnit()) * 3 - 1 }
        let costs = (0..<50).map { i in i % 5 == 0 ? 20.0 : 1.0 }
        let p = PolicyGradientCriterion.project(s, costs: costs, keep: 40)
        let kept = zip(p, costs).reduce(0) { $0 + $1.0 * $1.1 }
        // Within what clamping to [ε, 1 − ε] moves.
        #expect(abs(kept - 40) < PolicyGradientCriterion.epsilon * costs.reduce(0, +))
        #expect(p.allSatisfy { $0 >= PolicyGradientCriterion.epsilon && $0 <= 1 - PolicyGradientCriterion.epsilon })
        // Order is preserved.
        for i in s.indices { for j in s.indices where s[i] < s[j] { #expect(p[i] <= p[j]) } }
    }

    @Test func maskingInTheForwardEqualsZeroingTheUnitsWeights() throws {
        let m = try tinyModel()
        let c = m.config
        let seqs = sequences(2, length: 8)
        let tokens = Array(seqs.joined())
        // Units: kv@0 (2), mlp@0 (12), kv@1 (2), mlp@1 (12). Switch off mlp@0 channel 3 and kv@1 group 1.
        let masker = try UnitMaskObserver(groups: decoderGroups(m))
        var mask = [Bool](repeating: true, count: 28)
        mask[2 + 3] = false
        mask[14 + 1] = false
        masker.masks = [mask]
        masker.rowsPerMask = 16
        let masked = try m.nll(tokens: tokens, batch: 2, seqLen: 8, observer: masker)
        let dense = try m.nll(tokens: tokens, batch: 2, seqLen: 8)
        let down = m.params.view(TensorNames.ffnDown(0)), F = c.ffnDim[0]
        for r in 0..<c.hiddenSize { down[r * F + 3] = 0 }
        let out = m.params.view(TensorNames.attnOutput(1)), qDim = c.nHead[1] * c.headDim, width = qDim / c.nKVHead[1]
        for r in 0..<c.hiddenSize { for j in width..<(2 * width) { out[r * qDim + j] = 0 } }
        m.params.markModified()
        let zeroed = try m.nll(tokens: tokens, batch: 2, seqLen: 8)
        #expect(abs(masked.sum - zeroed.sum) < 1e-3)
        #expect(abs(masked.sum - dense.sum) > 1e-3)
    }

    @Test func learnsAllGroupsOnceWithForwardPassesOnly() throws {
        let m = try tinyModel()
        let seqs = sequences(6, length: 10)
        let stats = try Calibration.statistics(model: m, sequences: seqs)
        let groups = decoderGroups(m)
        let ctx = ScoringContext(model: m, statistics: stats, seed: 1, calibration: seqs, groups: groups)
        let crit = PolicyGradientCriterion(ratio: 0.2, steps: 6, lr: 0.2, masks: 3, batch: 2, seqLen: 8)
        // Forward passes only: no gradients are asked for or given, and the weights are left as they were.
        #expect(!crit.inputs.contains(.gradients) && !crit.inputs.contains(.fisher))
        #expect(ctx.gradients == nil)
        let before = Array(m.params.buffer)
        let version = m.params.version
        let c = m.config
        var learned: [Double] = [], costs: [Double] = []
        for l in 0..<2 {
            for g in [DecoderStructures.kvGroups(c, layer: l), DecoderStructures.mlpChannels(c, layer: l)] {
                let s = try crit.scores(for: g, context: ctx)
                #expect(s.count == g.units.count && s.allSatisfy { $0.isFinite && $0 > 0 && $0 < 1.01 })
                learned += s
                costs += g.units.map { Double($0.parameterCount) }
            }
        }
        #expect(Array(m.params.buffer) == before && m.params.version == version)
        #expect(crit.cache.runs == 1)
        #expect(crit.cache.losses.count == 6 && crit.cache.losses.allSatisfy(\.isFinite))
        // The probabilities hold the budget: all learned units minus 20% of the model's parameters.
        let keep = costs.reduce(0, +) - 0.2 * Double(m.parameterCount)
        let kept = zip(learned, costs).reduce(0) { $0 + $1.0 * $1.1 }
        #expect(abs(kept - keep) < 0.02 * costs.reduce(0, +))
        // A changed model is learned again.
        m.params.markModified()
        _ = try crit.scores(for: DecoderStructures.kvGroups(c, layer: 0), context: ctx)
        #expect(crit.cache.runs == 2)
    }

    @Test func errorsSayWhatIsMissing() throws {
        let m = try tinyModel()
        let crit = PolicyGradientCriterion(initialization: "uniform")
        let none = try #require(throws: PruneError.self) {
            try crit.scores(for: DecoderStructures.kvGroups(m.config, layer: 0), context: ScoringContext(model: m, statistics: nil, seed: 0))
        }
        #expect(none.message.contains("needs the run's calibration sequences"), "\(none.message)")
        let blocks = PruneGroup(kind: .block, layer: nil, units: [])
        let kind = try #require(throws: PruneError.self) { try crit.scores(for: blocks, context: ScoringContext(model: m, statistics: nil, seed: 0)) }
        #expect(kind.code == .unsupported && kind.message.contains("group 'blocks' is 'blocks'"), "\(kind.message)")
        // A 90% ratio removes more than two tiny layers hold.
        let ctx = ScoringContext(model: m, statistics: nil, seed: 0, calibration: sequences(2, length: 8),
                                 groups: decoderGroups(m))
        let ratio = try #require(throws: PruneError.self) {
            try PolicyGradientCriterion(ratio: 0.9, initialization: "uniform").scores(for: DecoderStructures.kvGroups(m.config, layer: 0), context: ctx)
        }
        #expect(ratio.code == .outOfRange && ratio.message.contains("ratio = '0.9'"), "\(ratio.message)")
        // The units come from the step's groups: a context without them has nothing to learn.
        let bare = ScoringContext(model: m, statistics: nil, seed: 0, calibration: sequences(2, length: 8))
        let noGroups = try #require(throws: PruneError.self) { try crit.scores(for: DecoderStructures.kvGroups(m.config, layer: 0), context: bare) }
        #expect(noGroups.message.contains("found no kv-groups or mlp-channels among the step's 0 groups"), "\(noGroups.message)")
    }

    @Test(arguments: [(#"{"masks": 1}"#, "masks = '1'"), (#"{"lr": 0}"#, "lr = '0'"), (#"{"steps": 0}"#, "steps = '0'"),
                      (#"{"layers": [4, 2]}"#, "layers = '[4, 2]'"), (#"{"ratio": 1}"#, "ratio = '1.0'"), (#"{"K": 4}"#, "unknown key 'K'")])
    func badKeysAreRejected(json: String, fragment: String) throws {
        let e = try #require(throws: PruneError.self) { try JSONDecoder().decode(PolicyGradientCriterion.self, from: Data(json.utf8)) }
        #expect(e.message.contains(fragment), "\(e.message)")
    }

    @Test func keysDecodeWithDefaults() throws {
        let c = try JSONDecoder().decode(PolicyGradientCriterion.self, from: Data(#"{"steps": 7, "layers": [3, 26]}"#.utf8))
        #expect(c.steps == 7 && c.layers == [3, 26] && c.ratio == 0.2 && c.masks == 4 && c.initialization == "wanda")
    }
}
