import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct BlockInfluenceTests {
    func tinyModel() throws -> Transformer {
        let c = ModelConfig(vocabSize: 37, hiddenSize: 16, nLayers: 3, headDim: 4, nHead: [4, 4, 4], nKVHead: [2, 2, 2], ffnDim: [12, 12, 12], contextLength: 32)
        return try Transformer(randomWith: c, seed: 9, scale: 0.3)
    }

    func blocks(_ layers: Range<Int>) -> PruneGroup {
        PruneGroup(kind: .block, layer: nil, units: layers.map { l in
            PruneUnit(slices: [TensorSlice(TensorNames.attnNorm(l), axis: 0, 0..<16), TensorSlice(TensorNames.ffnDown(l), axis: 0, 0..<16)], parameterCount: 1)
        })
    }

    func sequences() -> [[Int32]] {
        var rng = SplitMix64(seed: 4)
        return (0..<3).map { _ in (0..<8).map { _ in Int32(rng.next() % 37) } }
    }

    @Test func influenceIsOneMinusTheMeanCosineOfInputAndOutput() {
        let obs = CosineObserver(layers: 1)
        var x: [Float] = [1, 0, 0, 1]
        var y: [Float] = [2, 0, 1, 1]  // cos 1 and 1/√2
        x.withUnsafeBufferPointer { obs.observe(layer: 0, site: .blockInput, activations: $0, rows: 2, cols: 2) }
        y.withUnsafeBufferPointer { obs.observe(layer: 0, site: .blockOutput, activations: $0, rows: 2, cols: 2) }
        _ = (x, y)
        let bi = 1 - obs.sum[0] / Double(obs.count[0])
        #expect(abs(bi - (1 - (1 + 0.5.squareRoot()) / 2)) < 1e-9)
    }

    @Test func aBlockThatChangesNothingScoresZeroAndGoesFirst() throws {
        let m = try tinyModel()
        // Zero block 1's output projections: it passes its input through unchanged.
        for t in [TensorNames.attnOutput(1), TensorNames.ffnDown(1)] { m.params.view(t).update(repeating: 0) }
        m.params.markModified()
        let s = try BlockInfluenceCriterion().scores(for: blocks(0..<3), context: ScoringContext(model: m, statistics: nil, seed: 0, calibration: sequences()))
        #expect(s.count == 3 && s.allSatisfy(\.isFinite))
        #expect(abs(s[1]) < 1e-6)
        #expect(s[0] > 1e-3 && s[2] > 1e-3)
        // A group of some layers gets those layers' scores.
        let part = try BlockInfluenceCriterion().scores(for: blocks(1..<3), context: ScoringContext(model: m, statistics: nil, seed: 0, calibration: sequences()))
        #expect(part == Array(s[1...]))
    }

    @Test func errorsSayWhatIsMissing() throws {
        let m = try tinyModel()
        let noData = ScoringContext(model: m, statistics: nil, seed: 0)
        let none = try #require(throws: PruneError.self) { try BlockInfluenceCriterion().scores(for: blocks(0..<3), context: noData) }
        #expect(none.message.contains("needs the run's calibration sequences"), "\(none.message)")
        let mlp = PruneGroup(kind: .mlpChannel, layer: 0, units: [])
        let kind = try #require(throws: PruneError.self) {
            try BlockInfluenceCriterion().scores(for: mlp, context: ScoringContext(model: m, statistics: nil, seed: 0, calibration: sequences()))
        }
        #expect(kind.code == .unsupported && kind.message.contains("group 'mlp-channels@0' is 'mlp-channels'"), "\(kind.message)")
        let key = try #require(throws: PruneError.self) { try JSONDecoder().decode(BlockInfluenceCriterion.self, from: Data(#"{"tokens": 3}"#.utf8)) }
        #expect(key.message.contains("unknown key 'tokens'") && key.message.contains("takes no keys"), "\(key.message)")
    }
}
