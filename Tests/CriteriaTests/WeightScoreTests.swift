import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

/// Per-weight scores for mask schedulers (unstructured and N:M sparsity).
@Suite struct WeightScoreTests {
    /// A one-layer model with hand-set MLP weights: gate (3×2) and down (2×3).
    func handModel() throws -> Transformer {
        let c = ModelConfig(vocabSize: 8, hiddenSize: 2, nLayers: 1, headDim: 2, nHead: [1], nKVHead: [1], ffnDim: [3], contextLength: 8)
        let m = try Transformer(randomWith: c, seed: 1)
        let gate = m.params.view(TensorNames.ffnGate(0)), down = m.params.view(TensorNames.ffnDown(0))
        for (i, v) in [1, -1, 0, 2, 3, 0].enumerated() { gate[i] = Float(v) }
        for (i, v) in [1, 0, -2, 0, 0, 1].enumerated() { down[i] = Float(v) }
        return m
    }

    @Test func wandaScoresEachWeightByItsInputColumnNorm() throws {
        let ctx = ScoringContext(model: try handModel(), statistics: handStatistics(), seed: 0)
        let r2 = 2.0.squareRoot()
        let gate = try WandaCriterion().weightScores(of: TensorNames.ffnGate(0), context: ctx)
        // |W_ij|·‖X_j‖: gate rows [1,-1] [0,2] [3,0] against norms [√2, 2].
        let wantGate = [r2, 2, 0, 4, 3 * r2, 0]
        #expect(gate.count == 6)
        for (a, b) in zip(gate, wantGate) { #expect(abs(a - b) < 1e-12, "\(gate)") }
        // down rows [1,0,-2] [0,0,1] against norms [3, 0, 4].
        #expect(try WandaCriterion().weightScores(of: TensorNames.ffnDown(0), context: ctx) == [3, 0, 8, 0, 0, 4])
    }

    @Test func wandaNeedsStatisticsForTheMatrixInput() throws {
        let m = try handModel()
        let e = try #require(throws: PruneError.self) {
            try WandaCriterion().weightScores(of: TensorNames.ffnGate(0), context: ScoringContext(model: m, statistics: nil, seed: 0))
        }
        #expect(e.message.contains("criterion 'wanda' needs calibration activation statistics"), "\(e.message)")
        do {
            _ = try WandaCriterion().weightScores(of: TensorNames.tokenEmbedding, context: ScoringContext(model: m, statistics: handStatistics(), seed: 0))
            Issue.record("the embedding has no calibration input and should not be scored")
        } catch let e as PruneError {
            #expect(e.message.contains("'token_embd.weight'"), "\(e.message)")
        }
    }

    @Test func magnitudeScoresAreAbsoluteWeights() throws {
        let ctx = ScoringContext(model: try handModel(), statistics: nil, seed: 0)
        for norm in ["l1", "l2"] {
            #expect(try MagnitudeCriterion(norm: norm).weightScores(of: TensorNames.ffnGate(0), context: ctx) == [1, 1, 0, 2, 3, 0])
        }
    }

    @Test func randomWeightScoresAreSeededPerMatrix() throws {
        let ctx = ScoringContext(model: try handModel(), statistics: nil, seed: 7)
        let a = try RandomCriterion().weightScores(of: TensorNames.ffnGate(0), context: ctx)
        #expect(a == (try RandomCriterion().weightScores(of: TensorNames.ffnGate(0), context: ctx)))
        #expect(a != (try RandomCriterion(seed: 8).weightScores(of: TensorNames.ffnGate(0), context: ctx)))
        #expect(Array(a.prefix(3)) != Array(try RandomCriterion().weightScores(of: TensorNames.ffnUp(0), context: ctx).prefix(3)))
        #expect(a.allSatisfy { (0..<1).contains($0) })
    }
}
