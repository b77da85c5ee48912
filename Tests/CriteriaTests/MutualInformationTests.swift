import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct MutualInformationTests {
    /// n×cols standard normal samples, column by column independent.
    func gaussians(n: Int, cols: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<(n * cols)).map { _ in
            let u1 = (Double(rng.next() >> 11) + 0.5) / Double(1 << 53), u2 = Double(rng.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
    }

    func copy(column from: Int, to: Int, in z: inout [Float], n: Int, cols: Int, scale: Float = 1) {
        for i in 0..<n { z[i * cols + to] = scale * z[i * cols + from] }
    }

    func analyse(_ c: MutualInformationCriterion, _ z: [Float], n: Int, cols: Int, norms: [Double]? = nil) throws -> MutualInformationCriterion.Redundancy {
        try z.withUnsafeBufferPointer {
            try c.redundancy(samples: $0, n: n, cols: cols, columns: (0..<cols).map { $0..<($0 + 1) },
                             weightNorms: norms ?? [Double](repeating: 1, count: cols), seed: 1)
        }
    }

    @Test(arguments: [2.0, 1.5])
    func anExactDuplicateIsFoundAndOneCopyGoesFirst(alpha: Double) throws {
        let n = 96, cols = 10
        var z = gaussians(n: n, cols: cols, seed: 2)
        copy(column: 3, to: 8, in: &z, n: n, cols: cols)
        let r = try analyse(MutualInformationCriterion(alpha: alpha), z, n: n, cols: cols)
        // Equal magnitudes: the later index goes, its twin is kept and scores what it does not share.
        #expect(r.removalOrder.first == 8)
        let lowest = r.scores.indices.min { r.scores[$0] < r.scores[$1] }
        #expect(lowest == 8)
        // The pair's MI is far above every other pair's; the twin is not removed for it (ratio mode may
        // still rank it later, for a much weaker redundancy with another unit).
        let dup = try #require(r.pairs.firstIndex { $0 == (3, 8) })
        let others = r.information.enumerated().filter { $0.offset != dup }.map(\.element)
        #expect(r.information[dup] > 4 * (others.max() ?? 0))
        #expect(r.scores[3] >= -(others.max() ?? 0))
        let strict = try analyse(MutualInformationCriterion(mode: "threshold", threshold: 1, alpha: alpha), z, n: n, cols: cols)
        #expect(strict.removalOrder == [8] && strict.scores[3] >= 0)
    }

    @Test func ofARedundantPairTheSmallerOutputGoes() throws {
        let n = 64, cols = 6
        var z = gaussians(n: n, cols: cols, seed: 3)
        copy(column: 1, to: 4, in: &z, n: n, cols: cols, scale: 3)  // same information, three times the activation
        var r = try analyse(MutualInformationCriterion(), z, n: n, cols: cols)
        #expect(r.removalOrder.first == 1)
        // Weighting unit 1's output weights up by more than 3× flips the choice.
        r = try analyse(MutualInformationCriterion(), z, n: n, cols: cols, norms: [1, 4, 1, 1, 1, 1])
        #expect(r.removalOrder.first == 4)
    }

    @Test func thresholdModeMarksOnlyPairsAboveTr() throws {
        let n = 80, cols = 8
        var z = gaussians(n: n, cols: cols, seed: 4)
        copy(column: 0, to: 5, in: &z, n: n, cols: cols)
        copy(column: 2, to: 7, in: &z, n: n, cols: cols)
        let r = try analyse(MutualInformationCriterion(mode: "threshold", threshold: 1), z, n: n, cols: cols)
        #expect(Set(r.removalOrder) == [5, 7])
        // Marked units score below every other unit; the rest stay non-negative.
        #expect(r.scores.enumerated().allSatisfy { [5, 7].contains($0.offset) ? $0.element < -1 : $0.element >= 0 })
        // Ratio mode ranks every pair with I > 0: the two duplicates still go first.
        let ratio = try analyse(MutualInformationCriterion(), z, n: n, cols: cols)
        #expect(Set(ratio.removalOrder.prefix(2)) == [5, 7])
    }

    @Test func theBudgetLimitsPairsAndScreeningStillFindsTheTwin() throws {
        let n = 64, cols = 120
        var z = gaussians(n: n, cols: cols, seed: 5)
        copy(column: 17, to: 93, in: &z, n: n, cols: cols)
        let screened = try analyse(MutualInformationCriterion(pairs: 300, pairing: "screened"), z, n: n, cols: cols)
        #expect(screened.pairs.count == 300 && Set(screened.pairs.map { $0.0 * cols + $0.1 }).count == 300)
        #expect(screened.pairs.allSatisfy { $0.0 < $0.1 })
        #expect(screened.removalOrder.first == 93)
        let random = try analyse(MutualInformationCriterion(pairs: 300, pairing: "random"), z, n: n, cols: cols)
        #expect(random.pairs.count == 300)
        // Exhaustive when the budget covers every pair.
        #expect(try analyse(MutualInformationCriterion(pairs: 10_000), z, n: n, cols: cols).pairs.count == cols * (cols - 1) / 2)
    }

    /// A one-layer model with 3 query heads over 3 KV heads (head_dim 2) and 6 MLP channels.
    func model() throws -> Transformer {
        let c = ModelConfig(vocabSize: 8, hiddenSize: 4, nLayers: 1, headDim: 2, nHead: [3], nKVHead: [3], ffnDim: [6], contextLength: 8)
        return try Transformer(randomWith: c, seed: 1)
    }

    func stats(mlp: [Float], heads: [Float], n: Int) -> ActivationStatistics {
        let s = ActivationStatistics(sampleRows: n)
        mlp.withUnsafeBufferPointer { s.observe(layer: 0, site: .mlpIntermediate, activations: $0, rows: n, cols: 6) }
        heads.withUnsafeBufferPointer { s.observe(layer: 0, site: .attnOutputInput, activations: $0, rows: n, cols: 6) }
        return s
    }

    @Test func scoresMLPChannelsAndKVGroupsOfAModel() throws {
        let m = try model(), n = 64
        let groups = try DecoderGroupingForTests.groups(m)
        var mlp = gaussians(n: n, cols: 6, seed: 6), heads = gaussians(n: n, cols: 6, seed: 7)
        copy(column: 2, to: 5, in: &mlp, n: n, cols: 6)
        // KV group 2 (head-output columns 4, 5) repeats group 0 (columns 0, 1).
        copy(column: 0, to: 4, in: &heads, n: n, cols: 6)
        copy(column: 1, to: 5, in: &heads, n: n, cols: 6)
        let ctx = ScoringContext(model: m, statistics: stats(mlp: mlp, heads: heads, n: n), seed: 0)
        let c = MutualInformationCriterion()
        let ms = try c.scores(for: groups.mlp, context: ctx)
        let lowest = ms.indices.min { ms[$0] < ms[$1] }!
        #expect([2, 5].contains(lowest) && ms[2 + 5 - lowest] > ms[lowest] + 1)
        let ks = try c.scores(for: groups.kv, context: ctx)
        let k = ks.indices.min { ks[$0] < ks[$1] }!
        #expect([0, 2].contains(k) && ks[1] > ks[k])
        #expect(ms.allSatisfy(\.isFinite) && ks.allSatisfy(\.isFinite))
    }

    @Test func missingSamplesAndOtherStructuresSayWhy() throws {
        let m = try model()
        let groups = try DecoderGroupingForTests.groups(m)
        do {
            _ = try MutualInformationCriterion().scores(for: groups.mlp, context: ScoringContext(model: m, statistics: ActivationStatistics(), seed: 0))
            Issue.record("scored without samples")
        } catch let e as PruneError {
            #expect(e.message.contains("needs sampled activations of layer 0") && e.message.contains("mlp-channels@0"))
        }
        let blocks = PruneGroup(kind: .block, layer: nil, units: [])
        let e = try #require(throws: PruneError.self) {
            try MutualInformationCriterion().scores(for: blocks, context: ScoringContext(model: m, statistics: nil, seed: 0))
        }
        #expect(e.code == .unsupported && e.message.contains("group 'blocks' is 'blocks'"), "\(e.message)")
    }

    @Test func recipeKeysDecodeWithDefaultsAndRangeChecks() throws {
        func decode(_ json: String) throws -> MutualInformationCriterion {
            try JSONDecoder().decode(MutualInformationCriterion.self, from: Data(json.utf8))
        }
        let d = try decode(#"{"type": "mutual-information"}"#)
        #expect(d.mode == "ratio" && d.alpha == 2 && d.tokens == 256 && d.pairs == 20000 && d.pairing == "random" && d.bandwidthScale == 1)
        let t = try decode(#"{"mode": "threshold", "threshold": 0.8, "alpha": 1, "tokens": 64}"#)
        #expect(t.mode == "threshold" && t.threshold == 0.8 && t.alpha == 1 && t.sampleRows == 64)
        let bad = [(#"{"alpah": 2}"#, "unknown key 'alpah'"), (#"{"alpha": 0}"#, "alpha = '0'"), (#"{"tokens": 4}"#, "tokens = '4'"),
                   (#"{"mode": "both"}"#, "mode = 'both'"), (#"{"bandwidthScale": 0}"#, "bandwidthScale = '0'"), (#"{"threshold": -1}"#, "threshold = '-1.0'")]
        for (json, fragment) in bad {
            let e = try #require(throws: PruneError.self, "\(json)") { try decode(json) }
            #expect(e.message.contains(fragment), "\(json): \(e.message)")
        }
        #expect(Calibration.sampleRows(for: t) == 64)
        #expect(Calibration.sampleRows(for: WandaCriterion()) == 0)
        #expect(MutualInformationCriterion().inputs.contains(.activationSamples))
    }
}

/// The llama grouping's MLP-channel and KV-group units for layer 0, built as the grouping builds them.
enum DecoderGroupingForTests {
    static func groups(_ m: Transformer) throws -> (mlp: PruneGroup, kv: PruneGroup) {
        let c = m.config, hd = c.headDim, q = c.nHead[0] / c.nKVHead[0]
        let mlp = PruneGroup(kind: .mlpChannel, layer: 0, units: (0..<c.ffnDim[0]).map { ch in
            PruneUnit(slices: [TensorSlice(TensorNames.ffnGate(0), axis: 0, ch..<(ch + 1)), TensorSlice(TensorNames.ffnUp(0), axis: 0, ch..<(ch + 1)),
                               TensorSlice(TensorNames.ffnDown(0), axis: 1, ch..<(ch + 1))], parameterCount: 3 * c.hiddenSize)
        })
        let kv = PruneGroup(kind: .kvGroup, layer: 0, units: (0..<c.nKVHead[0]).map { g in
            PruneUnit(slices: [TensorSlice(TensorNames.attnQ(0), axis: 0, (g * q * hd)..<((g + 1) * q * hd)),
                               TensorSlice(TensorNames.attnK(0), axis: 0, (g * hd)..<((g + 1) * hd)),
                               TensorSlice(TensorNames.attnV(0), axis: 0, (g * hd)..<((g + 1) * hd)),
                               TensorSlice(TensorNames.attnOutput(0), axis: 1, (g * q * hd)..<((g + 1) * q * hd))], parameterCount: 1)
        })
        return (mlp, kv)
    }
}
