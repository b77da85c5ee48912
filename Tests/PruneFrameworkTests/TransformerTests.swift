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

    @Test func badTokenIdsAreRejectedWithTheirIndex() throws {
        let m = try Transformer(randomWith: tinyConfig(), seed: 1)
        #expect(throws: PruneError.self) { try m.nll(tokens: [1, 2, 999], batch: 1, seqLen: 3) }
        do {
            _ = try m.nll(tokens: [1, 2, 999], batch: 1, seqLen: 3)
        } catch let e as PruneError {
            #expect(e.message.contains("'999' at index 2"))
        }
    }
}
