import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct FLAPTests {
    /// One layer, hidden 2, two heads of dim 1 (each its own KV group), 3 MLP channels; weights set by hand.
    func handModel() throws -> Transformer {
        let c = ModelConfig(vocabSize: 8, hiddenSize: 2, nLayers: 1, headDim: 1, nHead: [2], nKVHead: [2], ffnDim: [3], contextLength: 8)
        let m = try Transformer(randomWith: c, seed: 1)
        // ffn_down is 2×3: columns [1,0] [0,0] [-2,1]; attn_output is 2×2: columns [1,1] [3,0].
        for (i, v) in [1, 0, -2, 0, 0, 1].enumerated() { m.params.view(TensorNames.ffnDown(0))[i] = Float(v) }
        for (i, v) in [1, 3, 1, 0].enumerated() { m.params.view(TensorNames.attnOutput(0))[i] = Float(v) }
        return m
    }

    func statistics() -> ActivationStatistics {
        let stats = ActivationStatistics()
        // MLP intermediate over two tokens: [1, 5, 0] and [3, 5, 4] → variances 1, 0, 4.
        var mid: [Float] = [1, 5, 0, 3, 5, 4]
        // Head outputs: [0, 1] and [2, 1] → variances 1, 0.
        var heads: [Float] = [0, 1, 2, 1]
        mid.withUnsafeBufferPointer { stats.observe(layer: 0, site: .mlpIntermediate, activations: $0, rows: 2, cols: 3) }
        heads.withUnsafeBufferPointer { stats.observe(layer: 0, site: .attnOutputInput, activations: $0, rows: 2, cols: 2) }
        _ = (mid, heads)
        return stats
    }

    func mlpGroup() -> PruneGroup {
        PruneGroup(kind: .mlpChannel, layer: 0, units: (0..<3).map { c in
            PruneUnit(slices: [TensorSlice(TensorNames.ffnGate(0), axis: 0, c..<(c + 1)), TensorSlice(TensorNames.ffnDown(0), axis: 1, c..<(c + 1))], parameterCount: 6)
        })
    }

    func kvGroup() -> PruneGroup {
        PruneGroup(kind: .kvGroup, layer: 0, units: (0..<2).map { k in
            PruneUnit(slices: [TensorSlice(TensorNames.attnK(0), axis: 0, k..<(k + 1)), TensorSlice(TensorNames.attnOutput(0), axis: 1, k..<(k + 1))], parameterCount: 8)
        })
    }

    @Test func fluctuationIsVarianceTimesSquaredColumnNorm() throws {
        let ctx = ScoringContext(model: try handModel(), statistics: statistics(), seed: 0)
        let raw = FLAPCriterion(standardize: "none")
        // MLP: 1·1, 0·0, 4·5.  Heads: 1·2, 0·9.
        #expect(try raw.scores(for: mlpGroup(), context: ctx) == [1, 0, 20])
        #expect(try raw.scores(for: kvGroup(), context: ctx) == [2, 0])
        #expect(try FLAPCriterion(metric: "ifv", standardize: "none").scores(for: mlpGroup(), context: ctx) == [1, 0, 4])
    }

    @Test func layerStandardisationGivesZeroMeanUnitDeviation() throws {
        let ctx = ScoringContext(model: try handModel(), statistics: statistics(), seed: 0)
        let s = try FLAPCriterion().scores(for: mlpGroup(), context: ctx)
        let want = FLAPCriterion.zScores([1, 0, 20])
        for (a, b) in zip(s, want) { #expect(abs(a - b) < 1e-12) }
        #expect(abs(s.reduce(0, +)) < 1e-9)
        let sd = (s.reduce(0) { $0 + $1 * $1 } / 2).squareRoot()
        #expect(abs(sd - 1) < 1e-9)
        // The order of the raw metric is kept.
        #expect(s[2] > s[0] && s[0] > s[1])
    }

    @Test func errorsSayWhatIsMissing() throws {
        let m = try handModel()
        let none = try #require(throws: PruneError.self) {
            try FLAPCriterion().scores(for: mlpGroup(), context: ScoringContext(model: m, statistics: nil, seed: 0))
        }
        #expect(none.message.contains("criterion 'flap' needs calibration activation statistics"), "\(none.message)")
        let blocks = PruneGroup(kind: .block, layer: nil, units: [])
        let kind = try #require(throws: PruneError.self) {
            try FLAPCriterion().scores(for: blocks, context: ScoringContext(model: m, statistics: statistics(), seed: 0))
        }
        #expect(kind.code == .unsupported && kind.message.contains("group 'blocks' is"), "\(kind.message)")
        let metric = try #require(throws: PruneError.self) { try JSONDecoder().decode(FLAPCriterion.self, from: Data(#"{"metric": "wifn"}"#.utf8)) }
        #expect(metric.message.contains("metric = 'wifn'") && metric.message.contains("wifv, ifv"), "\(metric.message)")
    }
}
