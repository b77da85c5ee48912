import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct CriteriaTests {
    /// A one-layer model whose MLP weights are set by hand.
    func handModel() throws -> Transformer {
        let c = ModelConfig(vocabSize: 8, hiddenSize: 2, nLayers: 1, headDim: 2, nHead: [1], nKVHead: [1], ffnDim: [3], contextLength: 8)
        let m = try Transformer(randomWith: c, seed: 1)
        let gate = m.params.view(TensorNames.ffnGate(0)), up = m.params.view(TensorNames.ffnUp(0)), down = m.params.view(TensorNames.ffnDown(0))
        // Rows of gate/up: channel c; columns of down: channel c (down is 2×3).
        for (i, v) in [1, -1, 0, 2, 3, 0].enumerated() { gate[i] = Float(v) }
        for (i, v) in [0, 1, 1, 1, 0, 0].enumerated() { up[i] = Float(v) }
        for (i, v) in [1, 0, -2, 0, 0, 1].enumerated() { down[i] = Float(v) }
        return m
    }

    func mlpGroup() -> PruneGroup {
        PruneGroup(kind: .mlpChannel, layer: 0, units: (0..<3).map { c in
            PruneUnit(slices: [TensorSlice(TensorNames.ffnGate(0), axis: 0, c..<(c + 1)), TensorSlice(TensorNames.ffnUp(0), axis: 0, c..<(c + 1)),
                               TensorSlice(TensorNames.ffnDown(0), axis: 1, c..<(c + 1))], parameterCount: 6)
        })
    }

    @Test func magnitudeL1SumsAbsoluteValuesOverSlices() throws {
        let m = try handModel()
        let s = try MagnitudeCriterion(norm: "l1").scores(for: mlpGroup(), context: ScoringContext(model: m, statistics: nil, seed: 0))
        // gate rows [1,-1] [0,2] [3,0]; up rows [0,1] [1,1] [0,0]; down columns [1,0] [0,0] [-2,1]
        // channel 0: 2 + 1 + 1 = 4; channel 1: 2 + 2 + 0 = 4; channel 2: 3 + 0 + 3 = 6
        #expect(s == [4, 4, 6])
    }

    @Test func magnitudeL2UsesSliceNorms() throws {
        let m = try handModel()
        let s = try MagnitudeCriterion(norm: "l2", reduction: "max").scores(for: mlpGroup(), context: ScoringContext(model: m, statistics: nil, seed: 0))
        #expect(abs(s[1] - 2) < 1e-9 && abs(s[2] - 3) < 1e-9)
    }

    @Test func wandaWeighsByInputColumnNorms() throws {
        let m = try handModel()
        let s = try WandaCriterion().scores(for: mlpGroup(), context: ScoringContext(model: m, statistics: handStatistics(), seed: 0))
        let r2 = 2.0.squareRoot()
        // channel 0: gate |1|√2+|-1|·2, up |0|√2+|1|·2, down column [1,0] against norm 3
        // channel 1: gate 0·√2+2·2, up √2+2, down column [0,0]
        // channel 2: gate 3√2, up 0, down column [-2,1] against norm 4: (2+1)·4
        let want = [r2 + 2 + 2 + 3, 4 + r2 + 2, 3 * r2 + (2 + 1) * 4]
        for (a, b) in zip(s, want) { #expect(abs(a - b) < 1e-9) }
    }

    /// FLAP's Wanda-sp: only the channel's ffn_down column counts (down columns [1,0] [0,0] [-2,1]
    /// against intermediate norms 3, 0, 4); a group without such columns is refused by name.
    @Test func wandaOutputSlicesScoreByTheDownColumnAlone() throws {
        let m = try handModel()
        let ctx = ScoringContext(model: m, statistics: handStatistics(), seed: 0)
        let wanda = try JSONDecoder().decode(WandaCriterion.self, from: Data(#"{"slices": "output"}"#.utf8))
        #expect(try wanda.scores(for: mlpGroup(), context: ctx) == [3, 0, 12])
        let hidden = PruneGroup(kind: .hiddenChannel, layer: nil, units: [PruneUnit(slices: [TensorSlice(TensorNames.ffnDown(0), axis: 0, 0..<1)], parameterCount: 3)])
        let e = try #require(throws: PruneError.self) { try wanda.scores(for: hidden, context: ctx) }
        #expect(e.message.contains("slices 'output' scores KV groups and MLP channels") && e.message.contains("(hidden-channels) has none"), "\(e.message)")
        // The default encodes as before, so sweep cache keys of plain wanda do not change.
        #expect(String(decoding: try JSONEncoder().encode(WandaCriterion()), as: UTF8.self) == #"{"reduction":"sum"}"#)
    }

    @Test func wandaWithoutStatisticsSaysWhy() throws {
        let m = try handModel()
        let e = try #require(throws: PruneError.self) {
            try WandaCriterion().scores(for: mlpGroup(), context: ScoringContext(model: m, statistics: nil, seed: 0))
        }
        #expect(e.message.contains("criterion 'wanda' needs calibration activation statistics"), "\(e.message)")
    }

    @Test func randomIsReproducibleFromItsSeed() throws {
        let m = try handModel()
        let ctx = ScoringContext(model: m, statistics: nil, seed: 7)
        let a = try RandomCriterion().scores(for: mlpGroup(), context: ctx)
        let again = try RandomCriterion().scores(for: mlpGroup(), context: ctx)
        let other = try RandomCriterion(seed: 8).scores(for: mlpGroup(), context: ctx)
        #expect(a == again)
        #expect(a != other)
    }
}
