import Foundation
import Testing
@testable import PruneFramework

/// Architectures are registered by name; a GGUF file or a Hugging Face config finds its own, and an
/// unknown one is named with the supported ones. A third architecture is one struct.
@Suite struct ArchitectureTests {
    /// A LLaMA-shaped architecture with its own GGUF and Hugging Face names: what adding one takes.
    struct ToyArchitecture: Architecture {
        let name = "toy"
        let ggufNames = ["toy"]
        let hfArchitectures = ["ToyForCausalLM"]
        let hfModelType = "toy"
        let attentionBias = false
        let ggufRoPE = RoPELayout.adjacentPairs
        func hfName(_ role: TensorRole, layer l: Int) -> String {
            role == .output ? "toy_head.weight" : LlamaArchitecture().hfName(role, layer: l).replacingOccurrences(of: "model.", with: "toy.")
        }
    }

    @Test func builtInsAreFoundByEveryName() throws {
        #expect(try Architectures.named("llama").name == "llama")
        #expect(try Architectures.forGGUF("deci", file: "f.gguf").name == "llama")
        #expect(try Architectures.forHF(architectures: ["LlamaForCausalLM"], modelType: "llama").name == "llama")
        #expect(try Architectures.forHF(architectures: nil, modelType: nil).name == "llama")
        #expect(try Architectures.forHF(architectures: ["MistralForCausalLM"], modelType: "mistral").name == "mistral")
        // Mistral is written as llama.cpp's converter writes it, and a `llama` file reads as LLaMA.
        #expect(try Architectures.named("mistral").ggufTarget(for: tinyConfig(layers: 1)).architecture == "llama")
        #expect(try Architectures.forGGUF("llama", file: "f.gguf").name == "llama")
    }

    @Test func unknownArchitecturesAreNamedWithTheSupportedOnes() throws {
        let g = try #require(throws: PruneError.self) { try Architectures.forGGUF("mamba", file: "m.gguf") }
        #expect(g.code == .unsupported && g.message.contains("GGUF file 'm.gguf': architecture 'mamba' is not supported; supported: llama, deci, qwen2") && !g.message.contains("qwen2, llama"), "\(g.message)")
        let h = try #require(throws: PruneError.self) { try Architectures.forHF(architectures: ["GPT2LMHeadModel"], modelType: "gpt2") }
        #expect(h.message.contains("architectures '[\"GPT2LMHeadModel\"]' is not supported; supported: LlamaForCausalLM"), "\(h.message)")
        #expect(throws: PruneError.self) { try Architectures.named("mamba") }
    }

    @Test func hfNamesMapBothWaysAndBiasesOnlyWhereTheArchitectureHasThem() {
        #expect(HFNames.canonical(hf: "model.layers.7.mlp.down_proj.weight") == "blk.7.ffn_down.weight")
        #expect(HFNames.hf(canonical: "blk.7.attn_output.weight") == "model.layers.7.self_attn.o_proj.weight")
        #expect(HFNames.canonical(hf: "model.layers.0.self_attn.q_proj.bias") == nil)
        #expect(HFNames.hf(canonical: "blk.0.attn_q.bias") == nil)
        #expect(HFNames.canonical(hf: "lm_head.weight") == "output.weight")
    }

    @Test func aRegisteredArchitectureLoadsItsOwnFiles() throws {
        Architectures.register(ToyArchitecture())
        let toy = try Architectures.forGGUF("toy", file: "t.gguf")
        #expect(toy.name == "toy")
        #expect(HFNames.canonical(hf: "toy.layers.2.mlp.up_proj.weight", architecture: toy) == "blk.2.ffn_up.weight")
        #expect(HFNames.hf(canonical: "output.weight", architecture: toy) == "toy_head.weight")
        // A GGUF of architecture "toy": the llama keys under the "toy." prefix.
        let c = tinyConfig(layers: 2)
        let model = try Transformer(randomWith: ModelConfig(vocabSize: c.vocabSize, hiddenSize: 16, nLayers: 2, headDim: 4,
                                                            nHead: [4, 4], nKVHead: [2, 2], ffnDim: [24, 24]), seed: 3)
        var w = GGUFWriter()
        for (k, v) in try model.ggufMetadata(type: .f32, source: nil, name: "toy") {
            w.set(k == "general.architecture" ? k : k.replacingOccurrences(of: "llama.", with: "toy."), k == "general.architecture" ? .string("toy") : v)
        }
        for (name, shape) in TensorNames.layout(for: model.config) {
            try w.addTensor(name: name, shape: shape, data: Array(model.params.view(name)), type: .f32)
        }
        let path = NSTemporaryDirectory() + "prune-toy-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let loaded = try Transformer(path: path)
        #expect(loaded.config.architecture == "toy" && loaded.config.nHead == [4, 4])
        let t: [Int32] = [1, 2, 3, 4]
        #expect(try loaded.logits(tokens: t, batch: 1, seqLen: 4) == (try model.logits(tokens: t, batch: 1, seqLen: 4)))
    }

    /// A tiny Qwen2 written as a `qwen2` GGUF by hand (the llama keys under the `qwen2.` prefix, q/k/v
    /// biases, untied head): it loads as Qwen2 and computes what the in-memory model computes.
    @Test func aQwen2GGUFLoadsWithBiasesAndHalvesRoPE() throws {
        var c = tinyConfig(layers: 2)
        c.architecture = "qwen2"
        c.attentionBias = true
        c.ropeLayout = .halves
        c.tiedEmbeddings = false
        let model = try Transformer(randomWith: c, seed: 4, scale: 0.3)
        var w = GGUFWriter()
        w.set("general.architecture", .string("qwen2"))
        var llama = c
        (llama.architecture, llama.attentionBias, llama.ropeLayout) = ("llama", false, .adjacentPairs)
        for (k, v) in try Transformer(randomWith: llama, seed: 4).ggufMetadata(type: .f32, source: nil, name: "q") where k != "general.architecture" {
            w.set(k.replacingOccurrences(of: "deci.", with: "qwen2.").replacingOccurrences(of: "llama.", with: "qwen2."), v)
        }
        for (name, shape) in TensorNames.layout(for: c) {
            try w.addTensor(name: name, shape: shape, data: Array(model.params.view(name)), type: .f32)
        }
        let path = NSTemporaryDirectory() + "prune-qwen2-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let loaded = try Transformer(path: path)
        #expect(loaded.config.architecture == "qwen2" && loaded.config.attentionBias && loaded.config.ropeLayout == .halves)
        #expect(loaded.params.entry("blk.1.attn_k.bias")?.shape == [4])
        let t: [Int32] = [3, 1, 4, 1, 5, 9]
        #expect(try loaded.logits(tokens: t, batch: 1, seqLen: 6) == (try model.logits(tokens: t, batch: 1, seqLen: 6)))
        // A Hugging Face directory of it (Qwen2ForCausalLM, q_proj.bias, rows in the halves layout) reads back the same.
        let dir = path + ".hf"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try loaded.saveSafetensors(directory: dir)
        let config = try String(contentsOfFile: dir + "/config.json", encoding: .utf8)
        #expect(config.contains("Qwen2ForCausalLM") && config.contains("\"model_type\" : \"qwen2\""), "\(config)")
        let names = try SafetensorsFile(path: dir + "/model.safetensors").tensors.map(\.name)
        #expect(names.contains("model.layers.0.self_attn.q_proj.bias") && names.contains("lm_head.weight"))
        let hf = try Transformer(safetensorsDirectory: dir)
        #expect(hf.config.architecture == "qwen2" && hf.config.ropeLayout == .halves)
        #expect(try hf.logits(tokens: t, batch: 1, seqLen: 6) == (try model.logits(tokens: t, batch: 1, seqLen: 6)))
        // Written back out, its per-layer widths make it a `deci` file with the Q/K rows and biases
        // reordered into adjacent pairs; read back, it is a LLaMA with biases computing the same.
        let out = path + ".out.gguf"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try loaded.writeGGUF(to: out, type: .f32)
        #expect(try GGUFFile(path: out)["general.architecture"]?.string == "deci")
        let deci = try Transformer(path: out)
        #expect(deci.config.architecture == "llama" && deci.config.attentionBias && deci.config.ropeLayout == .adjacentPairs)
        #expect(deci.params.entry("blk.1.attn_q.bias")?.shape == [8])
        let a = try deci.logits(tokens: t, batch: 1, seqLen: 6), b = try model.logits(tokens: t, batch: 1, seqLen: 6)
        #expect(zip(a, b).map { abs($0 - $1) }.max()! < 1e-5)
    }

    /// What llama.cpp's loaders take: `qwen2` holds one width for all layers with full-width queries
    /// (attn_q is n_embd × n_embd there), so an MLP-only pruned Qwen2 stays `qwen2` and one with
    /// fewer query heads becomes `deci`; either reads back with the same logits.
    @Test(arguments: [([4, 4], [24, 24], "qwen2"), ([4, 4], [12, 12], "qwen2"), ([2, 2], [24, 24], "deci"), ([4, 4], [24, 16], "deci")])
    func aQwen2IsWrittenAsTheGGUFArchitectureThatHoldsIt(heads: [Int], ffn: [Int], expected: String) throws {
        let c = ModelConfig(vocabSize: 37, hiddenSize: 16, nLayers: 2, headDim: 4, nHead: heads, nKVHead: [2, 2], ffnDim: ffn,
                            ropeBase: 1e6, rmsEps: 1e-6, contextLength: 64, tiedEmbeddings: true,
                            architecture: "qwen2", attentionBias: true, ropeLayout: .halves)
        let model = try Transformer(randomWith: c, seed: 9, scale: 0.3)
        #expect(try Architectures.named("qwen2").ggufTarget(for: c).architecture == expected)
        let path = NSTemporaryDirectory() + "prune-qwen2-out-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.writeGGUF(to: path, type: .f32)
        let file = try GGUFFile(path: path)
        #expect(file["general.architecture"]?.string == expected)
        #expect(file["\(expected).feed_forward_length"]?.int == (expected == "qwen2" ? ffn[0] : nil))
        #expect(file["\(expected).rope.freq_base"]?.double == 1e6)
        let back = try Transformer(path: path)
        #expect(back.config.attentionBias && back.config.nHead == heads && back.config.ffnDim == ffn)
        #expect(back.config.ropeLayout == (expected == "qwen2" ? .halves : .adjacentPairs))
        let t: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let a = try back.logits(tokens: t, batch: 1, seqLen: 8), b = try model.logits(tokens: t, batch: 1, seqLen: 8)
        #expect(zip(a, b).map { abs($0 - $1) }.max()! < (expected == "qwen2" ? 0 : 1e-5) + 1e-12)
    }

    /// A Qwen2 file whose tokenizer names a pre-tokenizer this package does not know, or whose
    /// tensor has the wrong shape: the error names the key or the tensor.
    @Test func aQwen2GGUFWithAnUnknownPreTokenizerOrAWrongShapeIsNamed() throws {
        var c = tinyConfig(layers: 1)
        (c.architecture, c.attentionBias, c.ropeLayout) = ("qwen2", true, .halves)
        let model = try Transformer(randomWith: c, seed: 4)
        for broken in ["pre", "shape"] {
            var w = GGUFWriter()
            for (k, v) in try model.ggufMetadata(type: .f32, source: nil, name: "q") { w.set(k, v) }
            w.set("tokenizer.ggml.model", .string("gpt2"))
            w.set("tokenizer.ggml.tokens", .array((0..<c.vocabSize).map { .string(ByteUnicode.encode([UInt8($0)])) }))
            w.set("tokenizer.ggml.merges", .array([]))
            w.set("tokenizer.ggml.pre", .string(broken == "pre" ? "qwen9" : "qwen2"))
            for (name, shape) in TensorNames.layout(for: c) {
                let bad = broken == "shape" && name == "blk.0.attn_k.bias"
                try w.addTensor(name: name, shape: bad ? [shape[0] + 1] : shape, data: [Float](repeating: 0.1, count: bad ? shape[0] + 1 : shape.reduce(1, *)), type: .f32)
            }
            let path = NSTemporaryDirectory() + "prune-qwen2-\(broken)-\(UUID().uuidString).gguf"
            defer { try? FileManager.default.removeItem(atPath: path) }
            try w.write(to: path)
            let source = try ModelSource(path: path)
            if broken == "pre" {
                let e = try #require(throws: PruneError.self) { try source.tokenizer() }
                #expect(e.message.contains("'tokenizer.ggml.pre' = 'qwen9' is not a supported pre-tokenizer; supported:") && e.message.contains("qwen2"), "\(e.message)")
            } else {
                let e = try #require(throws: PruneError.self) { try source.load() }
                #expect(e.message.contains("tensor 'blk.0.attn_k.bias' has shape [9], but the metadata ("), "\(e.message)")
            }
        }
    }

    @Test func aQwen2GGUFWithoutItsBiasesNamesTheMissingTensor() throws {
        var c = tinyConfig(layers: 1)
        c.tiedEmbeddings = false
        let model = try Transformer(randomWith: c, seed: 4)
        var w = GGUFWriter()
        for (k, v) in try model.ggufMetadata(type: .f32, source: nil, name: "q") {
            w.set(k == "general.architecture" ? k : k.replacingOccurrences(of: "deci.", with: "qwen2.").replacingOccurrences(of: "llama.", with: "qwen2."),
                  k == "general.architecture" ? .string("qwen2") : v)
        }
        for (name, shape) in TensorNames.layout(for: c) {
            try w.addTensor(name: name, shape: shape, data: Array(model.params.view(name)), type: .f32)
        }
        let path = NSTemporaryDirectory() + "prune-qwen2-nobias-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let e = try #require(throws: PruneError.self) { try Transformer(path: path) }
        #expect(e.message.contains("tensor 'blk.0.attn_q.bias' is missing"), "\(e.message)")
    }
}
