import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// A GGUF model's weights as the file stores them: known while they are the weights' values, and
/// multiplied directly when decoding asks for it (`Transformer.quantizedMatmul`).
@Suite struct StoredRowsTests {
    @Test(.requires(.smolLM2)) func storedRowsLastUntilATensorChanges() throws {
        let model = try Transformer(path: TestPaths.model)
        let q = TensorNames.attnQ(0), down = TensorNames.ffnDown(1), gate = TensorNames.ffnGate(2)
        let info = try #require(try GGUFFile(path: TestPaths.model).tensor(named: q))
        let rows = try #require(model.params.storedRows(q)), rowBytes = try info.type.byteCount(elements: model.config.hiddenSize)
        #expect(rows.type == info.type && rows.rowBytes == rowBytes)
        #expect(model.params.storedRows(TensorNames.attnNorm(0)) == nil, "a norm is not a matrix")
        // Written in place: the file's rows are no longer the values, until they are restored.
        model.params.pointer(down)[0] += 1
        model.params.markModified([down])
        #expect(model.params.storedRows(down) == nil)
        model.params.pointer(down)[0] -= 1
        model.params.markRestored([down])
        #expect(model.params.storedRows(down) != nil)
        // A deferred change (LoRA's merge) ends them too.
        model.params.update(gate) { _, _ in }
        #expect(model.params.storedRows(gate) == nil && model.params.storedRows(q) != nil)
        // A resident copy has none.
        #expect(try model.residentCopy().params.storedRows(q) == nil)
    }

    /// Decoding token by token with the stored rows gives the f32 path's logits up to rounding,
    /// and the same greedy continuation.
    @Test(.requires(.smolLM2)) func decodingFromStoredRowsMatchesTheF32Path() throws {
        let prompt: [Int32] = [504, 2365, 282, 260, 4377]
        func greedy(_ quantized: Bool) throws -> (tokens: [Int32], logits: [[Float]]) {
            let model = try Transformer(path: TestPaths.model)
            model.quantizedMatmul = quantized
            let cache = KVCache(config: model.config, capacity: 32)
            var logits = try model.decode(tokens: prompt, cache: cache), out: [Int32] = [], all = [logits]
            for _ in 0..<8 {
                let next = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
                out.append(next)
                logits = try model.decode(tokens: [next], cache: cache)
                all.append(logits)
            }
            return (out, all)
        }
        let (direct, f32) = (try greedy(true), try greedy(false))
        #expect(direct.tokens == f32.tokens)
        for (a, b) in zip(direct.logits, f32.logits) {
            let scale = b.map(abs).max()!, diff = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-4 * scale, "largest logit difference \(diff) against a scale of \(scale)")
            #expect(a != b, "the stored rows were used: their rounding differs from the f32 path's")
        }
    }
}
