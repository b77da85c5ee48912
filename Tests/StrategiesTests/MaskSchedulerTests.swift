import Foundation
import Testing
@testable import PruneFramework
@testable import Strategies

/// Unstructured and N:M masks: exact counts, the highest scores kept, ties resolved by index.
@Suite struct MaskSchedulerTests {
    func randomScores(_ n: Int, seed: UInt64) -> [Double] {
        var r = SplitMix64(seed: seed)
        return (0..<n).map { _ in Double(r.nextUnit()) }
    }

    /// Indices of `scores` zeroed by a stable ascending sort that drops `k` (the reference rule).
    func reference(_ scores: ArraySlice<Double>, drop k: Int) -> Set<Int> {
        Set(scores.indices.sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(k))
    }

    @Test(arguments: [(2, 4), (4, 8), (1, 4), (3, 4), (2, 8)])
    func nmKeepsTheNHighestOfEveryM(n: Int, m: Int) throws {
        let rows = 6, cols = 8 * m
        let scores = randomScores(rows * cols, seed: UInt64(10 * n + m))
        let zero = try NMScheduler(n: n, m: m).mask(scores: scores, rows: rows, cols: cols)
        for start in stride(from: 0, to: rows * cols, by: m) {
            let run = start..<(start + m)
            #expect(run.filter { !zero[$0] }.count == n, "run at \(start)")
            let kept = run.filter { !zero[$0] }.map { scores[$0] }, dropped = run.filter { zero[$0] }.map { scores[$0] }
            #expect(kept.min()! > dropped.max()!, "run at \(start): kept \(kept), dropped \(dropped)")
            #expect(Set(run.filter { zero[$0] }) == reference(scores[run], drop: m - n))
        }
    }

    @Test func nmTwoOfFourByHand() throws {
        // Ties: of equal scores the lower index goes first, as a stable sort would.
        let scores: [Double] = [1, 4, 3, 2, 5, 5, 0, 9, 7, 7, 7, 7]
        let zero = try NMScheduler().mask(scores: scores, rows: 1, cols: 12)
        #expect(zero == [true, false, false, true, true, false, true, false, true, true, false, false])
    }

    @Test func nmShortTrailingRunKeepsAtMostN() throws {
        // Rows of 6 with m = 4: a full run of 4, then a run of 2 that keeps both (n = 2).
        let scores = randomScores(3 * 6, seed: 3)
        let zero = try NMScheduler(n: 2, m: 4).mask(scores: scores, rows: 3, cols: 6)
        for r in 0..<3 {
            #expect((0..<4).filter { zero[r * 6 + $0] }.count == 2)
            #expect(!zero[r * 6 + 4] && !zero[r * 6 + 5])
        }
    }

    @Test(arguments: [0.0, 0.1, 0.3, 0.5, 0.75, 0.99])
    func unstructuredRowZeroesExactlyTheRatioOfEachRow(ratio: Double) throws {
        let rows = 9, cols = 40
        let scores = randomScores(rows * cols, seed: 5).map { ($0 * 8).rounded() }  // many ties
        let zero = try UnstructuredScheduler(ratio: ratio).mask(scores: scores, rows: rows, cols: cols)
        let k = Int((ratio * Double(cols)).rounded())
        for r in 0..<rows {
            let row = (r * cols)..<((r + 1) * cols)
            #expect(row.filter { zero[$0] }.count == k, "row \(r)")
            #expect(Set(row.filter { zero[$0] }) == reference(scores[row], drop: k), "row \(r)")
        }
    }

    @Test func unstructuredMatrixComparesAcrossRows() throws {
        // Row 0 scores low everywhere: per matrix it loses every weight, per row only half.
        let scores = (0..<4).map { Double($0) } + (0..<4).map { Double(10 + $0) }
        let perMatrix = try UnstructuredScheduler(ratio: 0.5, scope: "matrix").mask(scores: scores, rows: 2, cols: 4)
        #expect(perMatrix == [true, true, true, true, false, false, false, false])
        let perRow = try UnstructuredScheduler(ratio: 0.5).mask(scores: scores, rows: 2, cols: 4)
        #expect(perRow == [true, true, false, false, true, true, false, false])
        let big = randomScores(300 * 70, seed: 9)
        let z = try UnstructuredScheduler(ratio: 0.37, scope: "matrix").mask(scores: big, rows: 300, cols: 70)
        #expect(Set(z.indices.filter { z[$0] }) == reference(big[...], drop: Int((0.37 * 21000).rounded())))
    }

    @Test func maskSchedulersMakeNoStructuredPlan() throws {
        let m = try tinyModel()
        let e = try #require(throws: PruneError.self) {
            try NMScheduler().plan(groups: [], scores: [], context: PlanContext(model: m, step: 0, steps: 1, originalParameters: m.parameterCount))
        }
        #expect(e.code == .unsupported && e.message.contains("scheduler 'n:m'"), "\(e.message)")
    }

    @Test(arguments: [
        ([StructureKind.kvGroup], ["attn_q", "attn_k", "attn_v", "attn_output"]),
        ([.mlpChannel], ["ffn_gate", "ffn_up", "ffn_down"]),
        ([.kvGroup, .mlpChannel], ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]),
        ([.block], ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]),
    ])
    func maskedMatricesAreTheLinearsTheStructuresTouch(kinds: [StructureKind], names: [String]) throws {
        let m = try tinyModel(layers: 4)
        let t = Masking.linearTensors(touchedBy: try DecoderGrouping(structures: kinds, layers: 1...2).groups(for: m), in: m)
        #expect(t == [1, 2].flatMap { l in names.map { "blk.\(l).\($0).weight" } })
    }

    @Test func hiddenChannelsMaskEveryLinearButNoEmbeddingOrNorm() throws {
        let m = try tinyModel(layers: 2)
        let t = Masking.linearTensors(touchedBy: try DecoderGrouping(structures: [.hiddenChannel]).groups(for: m), in: m)
        #expect(t.count == 14)
        #expect(!t.contains { $0.contains("norm") || $0.contains("token_embd") })
    }

    @Test func applyZeroesInPlaceAndKeepsShapes() throws {
        let m = try tinyModel()
        let name = TensorNames.ffnUp(1), e = try #require(m.params.entry(name))
        let before = m.parameterCount
        let zero = try NMScheduler().mask(scores: randomScores(e.count, seed: 1), rows: e.shape[0], cols: e.shape[1])
        try Masking.apply(zero, to: name, in: m)
        #expect(m.parameterCount == before && m.params.entry(name)?.shape == e.shape)
        #expect(Masking.zeroCount(of: name, in: m) == e.count / 2)
        let bad = try #require(throws: PruneError.self) { try Masking.apply([true], to: name, in: m) }
        #expect(bad.code == .shapeMismatch && bad.message.contains("mask for '\(name)' has 1 flags"), "\(bad.message)")
    }
}
