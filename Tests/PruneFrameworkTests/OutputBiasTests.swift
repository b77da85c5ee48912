import Foundation
import Testing
@testable import PruneFramework

/// attn_output and ffn_down biases (`ModelConfig.outputBias`, FLAP's bias compensation): added by
/// `withOutputBiases`, written to and read from GGUF as llama.cpp's loaders take them, refused by
/// the safetensors writer.
@Suite struct OutputBiasTests {
    /// Two layers of one width, full-width queries; a LLaMA or a Qwen2 (q/k/v biases, RoPE on halves,
    /// untied head), with random output biases.
    static func model(qwen2: Bool) throws -> Transformer {
        let c = ModelConfig(vocabSize: 37, hiddenSize: 16, nLayers: 2, headDim: 4, nHead: [4, 4], nKVHead: [2, 2], ffnDim: [24, 24],
                            ropeBase: qwen2 ? 1e6 : 10000, contextLength: 64, tiedEmbeddings: !qwen2,
                            architecture: qwen2 ? "qwen2" : "llama", attentionBias: qwen2, ropeLayout: qwen2 ? .halves : .adjacentPairs,
                            outputBias: true)
        let m = try Transformer(randomWith: c, seed: 12, scale: 0.3)
        var rng = SplitMix64(seed: 13)
        for l in 0..<2 {
            for role in [TensorRole.attnOutputBias, .ffnDownBias] {
                let v = m.params.view(TensorNames.name(role, l))
                for i in 0..<v.count { v[i] = 0.5 * rng.nextSymmetric() }
            }
        }
        return m
    }

    static func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    static let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]

    /// A LLaMA with output biases stays a `llama` file (its loader takes them); a Qwen2 goes to
    /// `deci` (llama.cpp's `qwen2` loader refuses them). Read back, either computes the same, and
    /// the biases matter: without them the logits differ.
    @Test(arguments: [(false, "llama"), (true, "deci")])
    func aModelWithOutputBiasesRoundTripsThroughGGUF(qwen2: Bool, expected: String) throws {
        let model = try Self.model(qwen2: qwen2)
        #expect(try Architectures.named(model.config.architecture).ggufTarget(for: model.config).architecture == expected)
        var plain = model.config
        plain.outputBias = false
        #expect(try Architectures.named(model.config.architecture).ggufTarget(for: plain).architecture == (qwen2 ? "qwen2" : "llama"))
        let path = NSTemporaryDirectory() + "prune-output-bias-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.writeGGUF(to: path, type: .f32)
        let file = try GGUFFile(path: path)
        #expect(file["general.architecture"]?.string == expected)
        #expect(file.tensor(named: "blk.1.attn_output.bias")?.shape == [16] && file.tensor(named: "blk.0.ffn_down.bias")?.type == .f32)
        let back = try Transformer(path: path)
        #expect(back.config.outputBias && back.config.attentionBias == qwen2)
        let want = try model.logits(tokens: Self.tokens, batch: 1, seqLen: 8)
        let d = Self.maxDiff(try back.logits(tokens: Self.tokens, batch: 1, seqLen: 8), want)
        #expect(d < (qwen2 ? 1e-5 : 1e-12), "max |Δlogit| \(d)")
        for l in 0..<2 { for role in [TensorRole.attnOutputBias, .ffnDownBias] { back.params.view(TensorNames.name(role, l)).update(repeating: 0) } }
        back.params.markModified()
        #expect(Self.maxDiff(try back.logits(tokens: Self.tokens, batch: 1, seqLen: 8), want) > 1e-2)
    }

    /// A file with output biases in some layers only is refused, naming the missing tensor and one present.
    @Test func aFileWithOutputBiasesInSomeLayersIsRefused() throws {
        let model = try Self.model(qwen2: false)
        var w = GGUFWriter()
        for (k, v) in try model.ggufMetadata(type: .f32, source: nil, name: "partial") { w.set(k, v) }
        for (name, shape) in TensorNames.layout(for: model.config) where !name.hasPrefix("blk.0.") || !name.hasSuffix(".bias") {
            try w.addTensor(name: name, shape: shape, data: Array(model.params.view(name)), type: .f32)
        }
        let path = NSTemporaryDirectory() + "prune-partial-bias-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let e = try #require(throws: PruneError.self) { try Transformer(path: path) }
        #expect(e.message.contains("tensor 'blk.0.attn_output.bias' is missing, but the file has 'blk.1.attn_output.bias'")
                && e.message.contains("in every layer or in none"), "\(e.message)")
    }

    /// `withOutputBiases` adds zero biases to every layer: same logits, resident or lazy as it was.
    @Test(arguments: [false, true]) func addingZeroBiasesChangesNothing(lazy: Bool) throws {
        var m = try Transformer(randomWith: tinyConfig(layers: 2), seed: 14, scale: 0.3)
        let path = NSTemporaryDirectory() + "prune-add-bias-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        if lazy {
            try m.writeGGUF(to: path, type: .f32)
            m = try Transformer(path: path)
        }
        let biased = try m.withOutputBiases()
        #expect(biased.config.outputBias && !m.config.outputBias && biased.params.isLazy == lazy)
        #expect(biased.parameterCount == m.parameterCount + 2 * 2 * 16)
        #expect(biased.params.view("blk.1.ffn_down.bias").allSatisfy { $0 == 0 })
        let t = Array(Self.tokens.prefix(6))
        #expect(try biased.logits(tokens: t, batch: 1, seqLen: 6) == (try m.logits(tokens: t, batch: 1, seqLen: 6)))
        #expect(try biased.withOutputBiases() === biased)
    }

    /// Hugging Face's Llama has o_proj/down_proj biases only with q/k/v and gate/up biases: refused, naming the fix.
    @Test func safetensorsRefusesOutputBiases() throws {
        let dir = NSTemporaryDirectory() + "prune-bias-hf-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(throws: PruneError.self) { try Self.model(qwen2: false).saveSafetensors(directory: dir) }
        #expect(e.code == .unsupported && e.message.contains("attn_output and ffn_down biases") && e.message.contains("write it as GGUF"), "\(e.message)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/model.safetensors"))
    }
}
