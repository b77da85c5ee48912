import Foundation
import Testing
@testable import PruneFramework

@Suite struct TransformerTests {
    func randomTokens(_ n: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }

    @Test func kvCacheDecodingMatchesBatchedForward() throws {
        let m = try Transformer(randomWith: tinyConfig(layers: 3), seed: 7)
        let T = 12, V = m.config.vocabSize
        let tokens = randomTokens(T, vocab: V, seed: 3)
        let full = try m.logits(tokens: tokens, batch: 1, seqLen: T)
        let cache = KVCache(config: m.config, capacity: T)
        // A 5-token prompt, then one token at a time.
        var got = try m.decode(tokens: Array(tokens[0..<5]), cache: cache)
        for t in 4..<T {
            if t > 4 { got = try m.decode(tokens: [tokens[t]], cache: cache) }
            let want = full[(t * V)..<((t + 1) * V)]
            let diff = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            #expect(diff < 1e-4, "position \(t): max |Δ| \(diff)")
        }
    }

    @Test func sequencesInABatchAreIndependent() throws {
        let m = try Transformer(randomWith: tinyConfig(), seed: 11)
        let T = 9, V = m.config.vocabSize
        let a = randomTokens(T, vocab: V, seed: 1), b = randomTokens(T, vocab: V, seed: 2)
        let both = try m.logits(tokens: a + b, batch: 2, seqLen: T)
        let onlyB = try m.logits(tokens: b, batch: 1, seqLen: T)
        let diff = zip(both[(T * V)...], onlyB).map { abs($0 - $1) }.max() ?? 0
        #expect(diff < 1e-5)
    }

    @Test func causalityFutureTokensDoNotChangeEarlierLogits() throws {
        let m = try Transformer(randomWith: tinyConfig(), seed: 5)
        let T = 10, V = m.config.vocabSize
        var a = randomTokens(T, vocab: V, seed: 9)
        let before = try m.logits(tokens: a, batch: 1, seqLen: T)
        a[T - 1] = (a[T - 1] + 1) % Int32(V)
        let after = try m.logits(tokens: a, batch: 1, seqLen: T)
        #expect(before[0..<((T - 1) * V)] == after[0..<((T - 1) * V)])
        #expect(before[((T - 1) * V)...] != after[((T - 1) * V)...])
    }

    @Test func nllAgreesWithLogits() throws {
        let m = try Transformer(randomWith: tinyConfig(), seed: 13)
        let T = 8, V = m.config.vocabSize
        let tokens = randomTokens(2 * T, vocab: V, seed: 4)
        let lg = try m.logits(tokens: tokens, batch: 2, seqLen: T)
        let r = try m.nll(tokens: tokens, batch: 2, seqLen: T)
        var want = 0.0
        for b in 0..<2 {
            for t in 0..<(T - 1) {
                let row = Array(lg[((b * T + t) * V)..<((b * T + t + 1) * V)]).map(Double.init)
                let mx = row.max()!
                let lse = mx + log(row.map { exp($0 - mx) }.reduce(0, +))
                want += lse - row[Int(tokens[b * T + t + 1])]
            }
        }
        #expect(r.count == 2 * (T - 1))
        #expect(abs(r.sum - want) < 1e-3 * max(1, abs(want)))
    }

    final class Recorder: ForwardObserver {
        var seen: [String: (Int, Int)] = [:]
        func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
            seen["\(layer).\(site.rawValue)"] = (rows, cols)
            precondition(activations.count == rows * cols)
        }
    }

    @Test func observerSeesEveryLinearInputWithItsWidth() throws {
        let c = tinyConfig()
        let m = try Transformer(randomWith: c, seed: 1)
        let rec = Recorder()
        _ = try m.nll(tokens: randomTokens(3 * 5, vocab: c.vocabSize, seed: 8), batch: 3, seqLen: 5, observer: rec)
        for l in 0..<c.nLayers {
            #expect(rec.seen["\(l).attn-input"]! == (15, c.hiddenSize))
            #expect(rec.seen["\(l).attn-output-input"]! == (15, c.nHead[l] * c.headDim))
            #expect(rec.seen["\(l).mlp-input"]! == (15, c.hiddenSize))
            #expect(rec.seen["\(l).mlp-intermediate"]! == (15, c.ffnDim[l]))
        }
    }

    /// Column sums and sums of squares of every linear input, per tensor.
    static func inputStats(_ s: ActivationStatistics, _ m: Transformer) -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for e in m.params.entries where e.shape.count == 2 {
            if let col = s.input(of: e.name) { out[e.name] = col.sum + col.sumSq + [Double(col.count)] }
        }
        return out
    }

    static func close(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($1)) }
    }

    /// 5 sequences of 300 tokens make two chunks (3 + 2 sequences), as in a one-pass calibration.
    func calibrationSequences(_ c: ModelConfig) -> [[Int32]] {
        (0..<5).map { randomTokens(300, vocab: c.vocabSize, seed: 40 + UInt64($0)) }
    }

    @Test func layerByLayerWithoutChangesSeesWhatOnePassSees() throws {
        let c = tinyConfig(layers: 3)
        let m = try Transformer(randomWith: c, seed: 3)
        let seqs = calibrationSequences(c)
        let stepwise = ActivationStatistics()
        var visited: [Int] = []
        try m.layerByLayer(sequences: seqs, observer: stepwise) { visited.append($0) }
        #expect(visited == [0, 1, 2])
        let onePass = Self.inputStats(try Calibration.statistics(model: m, sequences: seqs), m)
        let got = Self.inputStats(stepwise, m)
        #expect(onePass.count == 3 * 7 && Set(got.keys) == Set(onePass.keys))
        for (k, v) in onePass { #expect(Self.close(got[k]!, v), "\(k)") }
    }

    /// Layer 1 must see layer 0 as `update(0)` left it; layer 0 itself is seen unchanged.
    @Test func layerByLayerShowsLaterLayersTheUpdatedEarlierOnes() throws {
        let c = tinyConfig(layers: 2)
        let m = try Transformer(randomWith: c, seed: 9)
        let seqs = calibrationSequences(c)
        let dense = Self.inputStats(try Calibration.statistics(model: m, sequences: seqs), m)
        func halve(_ model: Transformer) {
            let d = model.params.view(TensorNames.ffnDown(0))
            for i in 0..<(d.count / 2) { d[i] = 0 }
            model.params.markModified()
        }
        let stepwise = ActivationStatistics()
        try m.layerByLayer(sequences: seqs, observer: stepwise) { l in if l == 0 { halve(m) } }
        let changedFirst = try Transformer(randomWith: c, seed: 9)
        halve(changedFirst)
        let expected = Self.inputStats(try Calibration.statistics(model: changedFirst, sequences: seqs), changedFirst)
        let got = Self.inputStats(stepwise, m)
        for (k, v) in got {
            let want = k.hasPrefix("blk.0.") ? dense[k]! : expected[k]!
            #expect(Self.close(v, want), "\(k)")
            if k.hasPrefix("blk.1.") { #expect(!Self.close(v, dense[k]!), "\(k) did not see the change") }
        }
    }

    @Test func badTokenIdsAreRejectedWithTheirIndex() throws {
        let m = try Transformer(randomWith: tinyConfig(), seed: 1)
        let e = try #require(throws: PruneError.self) { try m.nll(tokens: [1, 2, 999], batch: 1, seqLen: 3) }
        #expect(e.code == .outOfRange && e.message.contains("'999' at index 2"), "\(e.message)")
        do {
            _ = try m.nll(tokens: [1, 2, 999], batch: 1, seqLen: 3)
        } catch let e as PruneError {
            #expect(e.message.contains("'999' at index 2"))
        }
    }
}
