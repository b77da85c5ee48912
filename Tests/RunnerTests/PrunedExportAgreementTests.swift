import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// A pruned model that llama.cpp runs and agrees with: each recipe in
/// `Fixtures/llamacpp/pruned/` is run here, its exported GGUF evaluated by this package on the
/// first four 512-token WikiText-2 windows, and compared with llama.cpp's NLL of the same file's
/// output on the same tokens (`scripts/reference/llamacpp_pruned_reference.py`).
///
/// - `qwen2.5-0.5b-mlp-uniform`: MLP channels of every layer, one width: a `qwen2` file.
/// - `qwen2.5-0.5b-kv-mlp-per-layer`: a KV group (7 query heads, their q/k/v biases) and MLP
///   channels of layers 4-19 only: a `deci` file, Q/K rows and biases reordered to adjacent pairs.
/// - `qwen2.5-0.5b-same-as-input`: the same cut with MLP widths in multiples of 256, written in the
///   input's own types (Q4_K, Q5_0, Q6_K, Q8_0; llama.cpp computes with them quantized).
/// - `qwen2.5-0.5b-q4_k_m`: MLP channels of every layer in multiples of 256, quantized by this
///   package as llama-quantize's Q4_K_M.
/// - `qwen2.5-0.5b-flap-bias-deci`: flap with bias compensation, MLP channels of every layer, one
///   width: without the biases a `qwen2` file, with them `deci` (llama.cpp's qwen2 loader refuses them).
///
/// For a model with output biases (FLAP's compensation) llama.cpp's NLL must also be closer to ours
/// than to ours without the biases: llama.cpp reads them and adds them.
@Suite(.serialized)
struct PrunedExportAgreementTests {
    static let folder = Repository.llamaCppFixtures + "/pruned"

    @Test(.requires(.qwen25Coder05B),
          arguments: ["qwen2.5-0.5b-mlp-uniform", "qwen2.5-0.5b-kv-mlp-per-layer", "qwen2.5-0.5b-same-as-input", "qwen2.5-0.5b-q4_k_m",
                      "qwen2.5-0.5b-flap-bias-deci"])
    func llamaCppRunsTheQwenExportAndAgrees(name: String) throws {
        try agree(name, tokens: "qwen2.5-0.5b_wikitext2_test_tokens.i32")
    }

    /// `smollm2-q4_1-hidden`: KV groups, MLP and hidden channels of every layer in multiples of 32,
    /// written in the input's Q4_1 (and Q8_0 embedding): a `deci` file with a narrower residual stream.
    /// `smollm2-flap-bias-llama`: flap with bias compensation, KV groups and MLP channels of every
    /// layer, one width: a `llama` file with attn_output and ffn_down biases.
    /// `smollm2-flap-bias-deci`: `Examples/recipes/flap.json`'s cut with compensation (global
    /// allocation, per-layer widths): a `deci` file with the biases.
    @Test(.requires(.smolLM2), arguments: ["smollm2-q4_1-hidden", "smollm2-flap-bias-llama", "smollm2-flap-bias-deci"])
    func llamaCppRunsTheSmolLM2ExportAndAgrees(name: String) throws {
        try agree(name, tokens: "smollm2_wikitext2_test_tokens.i32")
    }

    /// Runs recipe `name`, checks the export's architecture and widths against llama.cpp's record,
    /// and its NLL on the first four 512-token windows of `tokens` against llama.cpp's.
    func agree(_ name: String, tokens: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(name)_llamacpp.json"))
        let ref = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let file = try #require(ref["file"] as? [String: Any])
        let widths = try #require(ref["widths"] as? [String: Any])
        let want = try #require(ref["mean_nll"] as? Double)

        let dir = try temporaryDirectory("prune-pruned-agreement")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recipePath = "\(Self.folder)/\(name).json"
        let recipe = try Recipe.load(path: recipePath, plugins: .builtins())
        let run = PruneRun(recipe: recipe, recipePath: recipePath, outputDir: dir)
        run.log = { _ in }
        _ = try run.run()

        let path = "\(dir)/\(try #require(file["name"] as? String))"
        #expect(try GGUFFile(path: path)["general.architecture"]?.string == file["architecture"] as? String)
        let model = try Transformer(path: path)
        #expect(model.config.ffnDim == widths["ffn_dim"] as? [Int] && model.config.nHead == widths["n_head"] as? [Int])
        #expect(model.config.nKVHead == widths["n_kv_head"] as? [Int] && model.config.hiddenSize == widths["hidden_size"] as? Int)
        let idsData = try Data(contentsOf: URL(fileURLWithPath: Repository.llamaCppFixtures + "/" + tokens))
        let ids = idsData.withUnsafeBytes { raw in (0..<(idsData.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } }
        let ours = try model.nll(tokens: Array(ids[0..<(4 * 512)]), batch: 4, seqLen: 512).mean
        print("\(name): mean NLL \(ours), llama.cpp \(want), relative \(abs(ours - want) / want)")
        #expect(abs(ours - want) / want < 0.01, "the issue's bound is 1%")
        if model.config.outputBias {
            for l in 0..<model.config.nLayers {
                for role in [TensorRole.attnOutputBias, .ffnDownBias] { model.params.view(TensorNames.name(role, l)).update(repeating: 0) }
            }
            model.params.markModified()
            let without = try model.nll(tokens: Array(ids[0..<(4 * 512)]), batch: 4, seqLen: 512).mean
            print("\(name): without its output biases mean NLL \(without)")
            #expect(abs(ours - want) < abs(without - want) / 4, "llama.cpp \(want) is not closer to ours with the biases \(ours) than without \(without)")
        }
    }
}
