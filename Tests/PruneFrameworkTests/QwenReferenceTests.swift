import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// Qwen2.5-Coder-0.5B-Instruct (q/k/v biases, NEOX RoPE, untied head, Q5_0/Q8_0/Q4_K/Q6_K weights)
/// against llama.cpp's outputs on the first four 512-token WikiText-2 windows
/// (`scripts/reference/llamacpp_reference.py qwen2.5-0.5b`).
@Suite(.requires(.qwen25Coder05B), .serialized)
struct QwenReferenceTests {
    static let prefix = Repository.llamaCppFixtures + "/qwen2.5-0.5b"
    /// The model, loaded once for the suite.
    static let model = Result { try Transformer(path: RequiredFile.qwen25Coder05B.path) }

    func windows() throws -> [Int32] {
        let ids = try TestPaths.readInt32s(Self.prefix + "_wikitext2_test_tokens.i32")
        #expect(ids.count == 299_078)
        return Array(ids[0..<(4 * 512)])
    }

    func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.prefix + "_llamacpp.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func theFileIsReadAsQwen2() throws {
        let c = try Self.model.get().config
        #expect(c.architecture == "qwen2" && c.attentionBias && c.ropeLayout == .halves && !c.tiedEmbeddings)
        #expect(c.nLayers == 24 && c.hiddenSize == 896 && c.ffnDim.allSatisfy { $0 == 4864 })
        #expect(c.nHead.allSatisfy { $0 == 14 } && c.nKVHead.allSatisfy { $0 == 2 } && c.headDim == 64)
        #expect(c.ropeBase == 1_000_000 && c.vocabSize == 151_936)
    }

    /// The bound is 0.5%; measured 3.81380 against 3.81362 (0.005%).
    @Test func meanNLLOfFourWindowsMatchesLlamaCpp() throws {
        let r = try Self.model.get().nll(tokens: try windows(), batch: 4, seqLen: 512)
        let want = try #require(try reference()["mean_nll"] as? Double)
        print("Qwen2.5-0.5B mean NLL \(r.mean) (llama.cpp \(want)), relative \(abs(r.mean - want) / want)")
        #expect(r.count == 4 * 511)
        #expect(abs(r.mean - want) / want < 0.005)
    }

    /// Logits of positions 0-7 of window 0. llama.cpp quantizes the activations of every quantized
    /// matmul to 8-bit blocks (Q8_0/Q8_1/Q8_K) and keeps K and V in f16, while this forward keeps
    /// them in f32, so single logits differ by up to 1.29 (mean 0.1) though the NLL agrees to 0.005%
    /// and every top-1 token is the same; SmolLM2's f32 forward differs from llama.cpp by 1.05 the
    /// same way (BENCHMARKS.md, "Agreement with llama.cpp"). The bounds pin what was measured.
    @Test func logitsOfWindow0AgainstLlamaCpp() throws {
        let model = try Self.model.get()
        let V = model.config.vocabSize
        let lg = try model.logits(tokens: Array(try windows()[0..<8]), batch: 1, seqLen: 8)
        let ref = try TestPaths.readFloats(Self.prefix + "_llamacpp_window0_logits_pos0-7.f32")
        #expect(ref.count == 8 * V)
        var maxDiff: Float = 0, sumDiff = 0.0, top1 = 0
        for p in 0..<8 {
            let ours = lg[(p * V)..<((p + 1) * V)], theirs = ref[(p * V)..<((p + 1) * V)]
            for (a, b) in zip(ours, theirs) {
                maxDiff = max(maxDiff, abs(a - b))
                sumDiff += Double(abs(a - b))
            }
            if ours.indices.max(by: { ours[$0] < ours[$1] }) == theirs.indices.max(by: { theirs[$0] < theirs[$1] }) { top1 += 1 }
        }
        let meanDiff = sumDiff / Double(8 * V)
        print("Qwen2.5-0.5B |Δlogit| vs llama.cpp at positions 0-7: max \(maxDiff), mean \(meanDiff), top-1 \(top1)/8")
        #expect(maxDiff < 1.5 && meanDiff < 0.2)
        #expect(top1 == 8)
    }
}
