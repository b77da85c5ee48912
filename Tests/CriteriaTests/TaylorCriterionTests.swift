import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct TaylorCriterionTests {
    static func model(downScale: Float = 1) throws -> Transformer {
        let c = ModelConfig(vocabSize: 23, hiddenSize: 16, nLayers: 2, headDim: 4, nHead: [4, 4], nKVHead: [2, 2],
                            ffnDim: [12, 12], contextLength: 32)
        let m = try Transformer(randomWith: c, seed: 11, scale: 0.3)
        let d = m.params.view(TensorNames.ffnDown(0))
        for i in 0..<d.count { d[i] *= downScale }
        m.params.markModified()
        return m
    }

    static func sequences() -> [[Int32]] {
        var r = SplitMix64(seed: 4)
        return (0..<6).map { _ in (0..<10).map { _ in Int32(r.next() % 23) } }
    }

    /// Units made of single ffn_down columns of layer 0.
    static func downColumns(_ m: Transformer) -> PruneGroup {
        PruneGroup(kind: .mlpChannel, layer: 0, units: (0..<12).map { c in
            PruneUnit(slices: [TensorSlice(TensorNames.ffnDown(0), axis: 1, c..<(c + 1))], parameterCount: 16)
        })
    }

    /// The estimators by brute force over a KV-group-like unit (rows of q, columns of o) and an MLP unit.
    @Test(arguments: ["vector", "element1", "element2", "mix", "second"])
    func scoresFollowLLMPrunerFormulas(estimator: String) throws {
        let m = try Self.model()
        let g = try m.gradients(sequences: Self.sequences(), fisher: true)
        let ctx = ScoringContext(model: m, statistics: nil, seed: 0, gradients: g)
        let q = TensorNames.attnQ(1), o = TensorNames.attnOutput(1), gate = TensorNames.ffnGate(0)
        let group = PruneGroup(kind: .kvGroup, layer: 1, units: [
            PruneUnit(slices: [TensorSlice(q, axis: 0, 0..<8), TensorSlice(o, axis: 1, 0..<8)], parameterCount: 0),
            PruneUnit(slices: [TensorSlice(gate, axis: 0, 3..<4)], parameterCount: 0),
        ])
        let s = try TaylorCriterion(estimator: estimator).scores(for: group, context: ctx)

        func sal(_ name: String, _ i: Int) -> Double {
            let w = Double(m.params.view(name)[i]), gr = Double(g.gradients.view(name)[i]), f = Double(g.fisher!.view(name)[i])
            switch estimator {
            case "vector", "element1": return gr * w
            case "second": return 0.5 * f * w * w
            default: return gr * w - 0.5 * f * w * w
            }
        }
        // A channel's value: |Σ| for vector, Σ|·| otherwise.
        func channel(_ name: String, _ idx: [Int]) -> Double {
            estimator == "vector" ? abs(idx.reduce(0) { $0 + sal(name, $1) }) : idx.reduce(0) { $0 + abs(sal(name, $1)) }
        }
        let qRows = (0..<8).map { r in channel(q, (0..<16).map { r * 16 + $0 }) }.reduce(0, +)
        let oCols = (0..<8).map { c in channel(o, (0..<16).map { $0 * 16 + c }) }.reduce(0, +)
        let gateRow = channel(gate, (0..<16).map { 3 * 16 + $0 })
        #expect(abs(s[0] - (qRows + oCols)) < 1e-9 * max(1, s[0]))
        #expect(abs(s[1] - gateRow) < 1e-9 * max(1, s[1]))
        #expect(s.allSatisfy { $0 > 0 })
    }

    /// Removing a small ffn_down column changes the loss linearly in it, so the first-order estimate
    /// |g·w| of that column must predict the measured loss change.
    @Test func vectorScorePredictsTheLossChangeOfSmallUnits() throws {
        let m = try Self.model(downScale: 0.02)
        let seqs = Self.sequences()
        let g = try m.gradients(sequences: seqs)
        let s = try TaylorCriterion(estimator: "vector").scores(for: Self.downColumns(m),
                                                                context: ScoringContext(model: m, statistics: nil, seed: 0, gradients: g))
        let flat = Array(seqs.joined())
        let base = try m.nll(tokens: flat, batch: seqs.count, seqLen: 10).mean
        let d = m.params.view(TensorNames.ffnDown(0))
        var worst = 0.0
        for c in 0..<12 {
            let saved = (0..<16).map { d[$0 * 12 + c] }
            for r in 0..<16 { d[r * 12 + c] = 0 }
            m.params.markModified()
            let delta = abs(try m.nll(tokens: flat, batch: seqs.count, seqLen: 10).mean - base)
            for r in 0..<16 { d[r * 12 + c] = saved[r] }
            m.params.markModified()
            worst = max(worst, abs(delta - s[c]) / max(s.max()!, 1e-12))
        }
        #expect(worst < 0.05, "worst |measured − predicted| / max score = \(worst)")
    }

    @Test func inputsAndMissingGradients() throws {
        #expect(TaylorCriterion(estimator: "vector").inputs == [.weights, .gradients])
        #expect(TaylorCriterion(estimator: "element2").inputs.contains(.fisher))
        let m = try Self.model()
        let noGradients = try #require(throws: PruneError.self) {
            try TaylorCriterion().scores(for: Self.downColumns(m), context: ScoringContext(model: m, statistics: nil, seed: 0))
        }
        #expect(noGradients.message.contains("criterion 'taylor' needs calibration gradients"), "\(noGradients.message)")
        let g = try m.gradients(sequences: Self.sequences())
        let noFisher = try #require(throws: PruneError.self) {
            try TaylorCriterion(estimator: "element2").scores(for: Self.downColumns(m),
                                                              context: ScoringContext(model: m, statistics: nil, seed: 0, gradients: g))
        }
        #expect(noFisher.message.contains("estimator 'element2' needs the Fisher diagonal"), "\(noFisher.message)")
        do {
            _ = try JSONDecoder().decode(TaylorCriterion.self, from: Data(#"{"estimator": "vectorize"}"#.utf8))
            Issue.record("unknown estimator accepted")
        } catch let e as PruneError {
            #expect(e.message.contains("element2"))
        }
    }
}
