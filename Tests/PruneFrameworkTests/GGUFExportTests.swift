import Foundation
import Testing
import TestSupport
@testable import PruneFramework

@Suite struct GGUFExportTests {
    /// A tiny config with the same widths in every layer (exported as `llama`).
    static func uniformTinyConfig(layers: Int = 2, tied: Bool = true) -> ModelConfig {
        var c = tinyConfig(layers: layers)
        c.nHead = [Int](repeating: 4, count: layers)
        c.nKVHead = [Int](repeating: 2, count: layers)
        c.ffnDim = [Int](repeating: 24, count: layers)
        c.tiedEmbeddings = tied
        return c
    }

    /// A fresh path in a fresh temporary directory; the caller removes the directory.
    func tempPath() throws -> (dir: String, path: String) {
        let dir = NSTemporaryDirectory() + "prune-export-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (dir, dir + "/model.gguf")
    }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    func tokens(_ n: Int, vocab: Int) -> [Int32] { (0..<n).map { Int32(($0 * 7 + 3) % vocab) } }

    enum Shape: String, CaseIterable { case nonUniform, uniform, uniformUntied }

    func config(_ s: Shape) -> ModelConfig {
        switch s {
        case .nonUniform: tinyConfig(layers: 3)
        case .uniform: Self.uniformTinyConfig()
        case .uniformUntied: Self.uniformTinyConfig(tied: false)
        }
    }

    @Test(arguments: Shape.allCases, [(GGUFOutputType.f32, Float(1e-6)), (.f16, 1e-2)])
    func roundTripGivesSameLogits(shape: Shape, typeAndTolerance: (GGUFOutputType, Float)) throws {
        let (type, tol) = typeAndTolerance
        let model = try Transformer(randomWith: config(shape), seed: 11)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.writeGGUF(to: path, type: type)
        let back = try Transformer(path: path)
        #expect(back.config == model.config)
        let t = tokens(12, vocab: model.config.vocabSize)
        let d = maxAbsDiff(try model.logits(tokens: t, batch: 2, seqLen: 6), try back.logits(tokens: t, batch: 2, seqLen: 6))
        #expect(d < tol, "max |Δlogit| \(d) for \(shape) \(type)")
        if type == .f32 {
            for e in model.params.entries { #expect(Array(back.params.view(e.name)) == Array(model.params.view(e.name))) }
        }
    }

    @Test func nonUniformModelIsDeciWithPerLayerArrays() throws {
        let c = tinyConfig(layers: 3)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Transformer(randomWith: c, seed: 1).writeGGUF(to: path, type: .f16, name: "tiny")
        let f = try GGUFFile(path: path)
        #expect(f.version == 3)
        #expect(f.metadata.first?.key == "general.architecture")
        #expect(f["general.architecture"] == .string("deci") && f["general.name"] == .string("tiny"))
        #expect(f["general.file_type"] == .uint32(1))
        func u32s(_ a: [Int]) -> GGUFValue { .array(a.map { .uint32(UInt32($0)) }) }
        #expect(f["deci.attention.head_count"] == u32s(c.nHead))
        #expect(f["deci.attention.head_count_kv"] == u32s(c.nKVHead))
        #expect(f["deci.feed_forward_length"] == u32s(c.ffnDim))
        for (key, v) in [("block_count", 3), ("context_length", 64), ("embedding_length", 16), ("attention.key_length", 4),
                         ("attention.value_length", 4), ("rope.dimension_count", 4), ("vocab_size", 37)] {
            #expect(f["deci.\(key)"] == .uint32(UInt32(v)), "deci.\(key)")
        }
        #expect(f["deci.rope.freq_base"] == .float32(10000) && f["deci.attention.layer_norm_rms_epsilon"] == .float32(1e-5))
        #expect(!f.metadata.contains { $0.key.hasPrefix("llama.") })
    }

    @Test func uniformModelIsLlamaWithScalars() throws {
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Transformer(randomWith: Self.uniformTinyConfig(), seed: 1).writeGGUF(to: path, type: .f32)
        let f = try GGUFFile(path: path)
        #expect(f["general.architecture"] == .string("llama") && f["general.name"] == .string("pruned model"))
        #expect(f["general.file_type"] == .uint32(0))
        #expect(f["llama.attention.head_count"] == .uint32(4) && f["llama.attention.head_count_kv"] == .uint32(2))
        #expect(f["llama.feed_forward_length"] == .uint32(24) && f["llama.rope.dimension_count"] == .uint32(4))
        #expect(f["llama.attention.key_length"] == .uint32(4) && f["llama.block_count"] == .uint32(2))
        #expect(!f.metadata.contains { $0.key.hasPrefix("deci.") })
    }

    @Test(arguments: [true, false])
    func tensorOrderTypesAndTiedHead(tied: Bool) throws {
        var c = tinyConfig(layers: 2)
        c.tiedEmbeddings = tied
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Transformer(randomWith: c, seed: 2).writeGGUF(to: path, type: .f16)
        let f = try GGUFFile(path: path)
        var want = [TensorNames.tokenEmbedding]
        for l in 0..<2 {
            want += [TensorNames.attnNorm(l), TensorNames.attnQ(l), TensorNames.attnK(l), TensorNames.attnV(l),
                     TensorNames.attnOutput(l), TensorNames.ffnNorm(l), TensorNames.ffnGate(l), TensorNames.ffnUp(l),
                     TensorNames.ffnDown(l)]
        }
        want.append(TensorNames.outputNorm)
        if !tied { want.append(TensorNames.output) }
        #expect(f.tensors.map(\.name) == want)
        for t in f.tensors { #expect(t.type == (t.shape.count == 1 ? .f32 : .f16), "\(t.name)") }
    }

    /// Files are written in pieces (1 GiB in real use; 7 bytes here) and come out whole.
    @Test func chunkedWritesKeepEveryByte() throws {
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try writeInChunks([data[3...]], to: path, chunk: 7)
        #expect(FileManager.default.contents(atPath: path) == data[3...])
    }

    /// A tensor with a value beyond f16's range is kept in f32 in an f16 GGUF and an f16 safetensors
    /// file, instead of turning into inf.
    @Test func valuesBeyondHalfRangeKeepTheirTensorInF32() throws {
        let c = Self.uniformTinyConfig()
        let model = try Transformer(randomWith: c, seed: 6)
        model.params.view(TensorNames.ffnGate(1))[3] = 1.25e5
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.writeGGUF(to: path, type: .f16)
        let f = try GGUFFile(path: path)
        #expect(f.tensor(named: TensorNames.ffnGate(1))?.type == .f32 && f.tensor(named: TensorNames.ffnGate(0))?.type == .f16)
        #expect(try Transformer(path: path).params.tensor(TensorNames.ffnGate(1))?.data[3] == 1.25e5)
        try model.saveSafetensors(directory: dir + "/hf", dtype: .f16)
        let st = try SafetensorsFile(path: dir + "/hf/model.safetensors")
        #expect(st.tensors.first { $0.name == "model.layers.1.mlp.gate_proj.weight" }?.dtypeName == "F32")
        #expect(st.tensors.first { $0.name == "model.layers.0.mlp.gate_proj.weight" }?.dtypeName == "F16")
    }

    /// Q8_0 where rows are whole 32-value blocks; F16 where they are not; F32 norms.
    @Test func q8_0FallsBackToF16ForShortRows() throws {
        let c = ModelConfig(vocabSize: 41, hiddenSize: 32, nLayers: 2, headDim: 8, nHead: [4, 2], nKVHead: [2, 1],
                            ffnDim: [64, 40], contextLength: 64)
        let model = try Transformer(randomWith: c, seed: 5)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.writeGGUF(to: path, type: .q8_0)
        let f = try GGUFFile(path: path)
        #expect(f["general.file_type"] == .uint32(7))
        for t in f.tensors {
            let want: GGMLType = t.shape.count == 1 ? .f32 : (t.shape[1] % 32 == 0 ? .q8_0 : .f16)
            #expect(t.type == want, "\(t.name) shape \(t.shape)")
        }
        #expect(f.tensor(named: TensorNames.ffnDown(1))?.type == .f16)
        #expect(f.tensor(named: TensorNames.ffnDown(0))?.type == .q8_0)
        let back = try Transformer(path: path)
        let t = tokens(10, vocab: c.vocabSize)
        let d = maxAbsDiff(try model.logits(tokens: t, batch: 1, seqLen: 10), try back.logits(tokens: t, batch: 1, seqLen: 10))
        #expect(d < 2e-2, "max |Δlogit| \(d)")
    }

    /// A model whose rows fill 256-value blocks except ffn_down of layer 1 (200 channels).
    static func quantizableConfig() -> ModelConfig {
        ModelConfig(vocabSize: 64, hiddenSize: 256, nLayers: 2, headDim: 64, nHead: [4, 4], nKVHead: [2, 2], ffnDim: [512, 200],
                    contextLength: 64, tiedEmbeddings: false)
    }

    /// Each tensor is written in the type llama-quantize gives it, and reads back as the
    /// dequantised blocks of exactly those values.
    @Test(arguments: [QuantizationMix.q4_K_M, .q4_0, .q5_1, .q8_0, .q6_K])
    func aQuantizedExportHasLlamaQuantizesTypes(mix: QuantizationMix) throws {
        let model = try Transformer(randomWith: Self.quantizableConfig(), seed: 5, scale: 0.5)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let summary = try model.writeGGUF(to: path, type: .mix(mix))
        let file = try GGUFFile(path: path)
        #expect(file["general.file_type"]?.int == Int(mix.llamaFileType))
        let layout = TensorNames.layout(for: model.config)
        let info = QuantizationModelInfo(architecture: "deci", layerCount: 2, headCount: 4, kvHeadCount: 2, hasOutputHead: true)
        let expected = mix.tensorTypes(layout, model: info)
        for ((name, _), choice) in zip(layout, expected) {
            let t = try #require(file.tensors.first { $0.name == name })
            #expect(t.type == choice.type, "\(name): \(t.type.name), llama-quantize gives \(choice)")
            let bytes = try quantize(choice.type, UnsafeBufferPointer(model.params.view(name)))
            #expect(Array(file.rawBytes(t)) == bytes, "\(name)")
        }
        // ffn_down of layer 1 has rows of 200 values: no 32-value block type fits, so F16.
        #expect(summary.fallbacks.contains { $0.tensor == "blk.1.ffn_down.weight" && $0.type == "F16" })
    }

    /// `q4_k` is every matrix in Q4_K (llama-quantize's `--pure`), where `q4_k_m` gives the head Q6_K.
    @Test func q4_kPutsEveryMatrixInQ4_K() throws {
        let model = try Transformer(randomWith: Self.quantizableConfig(), seed: 7, scale: 0.5)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let type = try GGUFOutputType(name: "q4_k")
        #expect(type == .pure(.q4_K_M) && type.description == "q4_k")
        let summary = try model.writeGGUF(to: path, type: type)
        let file = try GGUFFile(path: path)
        for t in file.tensors where t.dims.count == 2 && t.name != "blk.1.ffn_down.weight" {
            #expect(t.type == .q4_K, "\(t.name): \(t.type.name)")
        }
        #expect(summary.fallbacks == [.init(tensor: "blk.1.ffn_down.weight", type: "F16", instead: "Q4_K")])
        #expect(file["general.file_type"]?.int == 15)
    }

    /// `same-as-input` keeps each tensor's type; a row that no longer fills its blocks falls back.
    @Test func sameAsInputKeepsEachTensorsType() throws {
        let model = try Transformer(randomWith: Self.quantizableConfig(), seed: 6, scale: 0.5)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var input: [String: GGMLType] = [:]
        for (i, (name, _)) in TensorNames.layout(for: model.config).enumerated() { input[name] = [.q4_1, .q8_0, .q4_K, .q6_K][i % 4] }
        input["blk.1.ffn_down.weight"] = .q4_K
        input["blk.0.ffn_down.weight"] = .q5_K
        let summary = try model.writeGGUF(to: path, type: .sameAsInput, inputTypes: input)
        let file = try GGUFFile(path: path)
        for t in file.tensors where t.dims.count == 2 && t.name != "blk.1.ffn_down.weight" {
            #expect(t.type == input[t.name], "\(t.name)")
        }
        #expect(summary.fallbacks == [.init(tensor: "blk.1.ffn_down.weight", type: "F16", instead: "Q4_K")])
        let cannot = try #require(throws: PruneError.self) {
            try model.writeGGUF(to: path, type: .sameAsInput, inputTypes: input.mapValues { _ in GGMLType.iq2_xs })
        }
        #expect(cannot.message.contains("is IQ2_XS in the input, which this package cannot write"), "\(cannot.message)")
    }

    @Test func bosAndEosSurviveWithoutASource() throws {
        var c = Self.uniformTinyConfig()
        c.bosTokenId = 1
        c.eosTokenId = 2
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Transformer(randomWith: c, seed: 3).writeGGUF(to: path, type: .f32)
        #expect(try Transformer(path: path).config == c)
    }

    @Test func missingDirectoryIsNamedAndNothingIsWritten() throws {
        let dir = NSTemporaryDirectory() + "prune-export-missing-\(UUID().uuidString)"
        let path = dir + "/sub/model.gguf"
        let model = try Transformer(randomWith: tinyConfig(), seed: 1)
        let e = try #require(throws: PruneError.self) { try model.writeGGUF(to: path) }
        #expect(e.code == .fileNotFound)
        #expect(e.message.contains("'\(path)'") && e.message.contains("create it first"), "\(e.message)")
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    /// A target that cannot be replaced (a directory) fails at the rename; the temporary file is removed.
    @Test func failedWriteLeavesNoPartialFile() throws {
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: path + "/occupied", withIntermediateDirectories: true)
        let model = try Transformer(randomWith: tinyConfig(), seed: 1)
        let e = try #require(throws: PruneError.self) { try model.writeGGUF(to: path, type: .f32) }
        #expect(e.code == .io && e.message.contains("'\(path)'"), "\(e.message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.gguf"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: path) == ["occupied"])
    }

    @Test func sourceWithAnotherVocabularyIsRejected() throws {
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("tokenizer.ggml.tokens", .array((0..<5).map { .string("t\($0)") }))
        try w.write(to: dir + "/source.gguf")
        let source = try GGUFFile(path: dir + "/source.gguf")
        let model = try Transformer(randomWith: tinyConfig(), seed: 1)
        let e = try #require(throws: PruneError.self) { try model.writeGGUF(to: path, source: source) }
        #expect(e.code == .shapeMismatch && e.message.contains("5 tokens") && e.message.contains("37"), "\(e.message)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func sourceMetadataIsCopiedExceptEncodingKeys() throws {
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.name", .string("Source"))
        w.set("general.license", .string("apache-2.0"))
        w.set("general.file_type", .uint32(3))
        w.set("general.quantization_version", .uint32(2))
        w.set("llama.rope.scaling.type", .string("linear"))
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.tokens", .array((0..<37).map { .string("t\($0)") }))
        w.set("tokenizer.ggml.bos_token_id", .uint32(7))
        try w.write(to: dir + "/source.gguf")
        let source = try GGUFFile(path: dir + "/source.gguf")
        try Transformer(randomWith: tinyConfig(), seed: 1).writeGGUF(to: path, source: source)
        let f = try GGUFFile(path: path)
        #expect(f["general.name"] == .string("Source") && f["general.license"] == .string("apache-2.0"))
        #expect(f["general.file_type"] == .uint32(1) && f["general.quantization_version"] == .uint32(2))
        #expect(f["llama.rope.scaling.type"] == nil && f["general.architecture"] == .string("deci"))
        #expect(f["tokenizer.ggml.model"] == .string("gpt2") && f["tokenizer.ggml.tokens"]?.array?.count == 37)
        #expect(f["tokenizer.ggml.bos_token_id"] == .uint32(7))
    }

    /// F16 storage of SmolLM2's Q4_1-dequantised weights moves its logits (range about ±32) by up to
    /// 0.038, mean 0.006: exactly what rounding the weights to F16 in memory gives, so the test
    /// checks that exported weights are the F16 rounding of the original (norms exact), then
    /// bounds the logit change (max 0.05, mean 0.01) and requires the same top-1 at every position.
    @Test(.requires(.smolLM2))
    func realModelF16RoundTripKeepsLogitsAndTokenizer() throws {
        let model = try #require(SharedModel.model)
        let source = try GGUFFile(path: TestPaths.model)
        let (dir, path) = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.writeGGUF(to: path, type: .f16, source: source)
        let f = try GGUFFile(path: path)
        #expect(f["general.architecture"] == .string("llama") && f["general.file_type"] == .uint32(1))
        #expect(f["general.name"] == source["general.name"] && f["general.quantization_version"] == .uint32(2))
        #expect(f.tensor(named: TensorNames.output) == nil)
        let text = "The quick brown fox jumps over the lazy dog. Once upon a time, there"
        let ids = try BPETokenizer(gguf: f).encode(text)
        #expect(ids == (try BPETokenizer(gguf: source)).encode(text))
        let t = Array(ids.prefix(16))
        try #require(t.count == 16)
        let back = try Transformer(gguf: f)
        #expect(back.config == model.config)
        // Every 61st value of every tensor (a full pass over 135M values is slow in debug builds).
        for e in model.params.entries {
            let a = model.params.view(e.name), b = back.params.view(e.name)
            let exact = e.shape.count == 1
            let ok = stride(from: 0, to: a.count, by: 61).allSatisfy { b[$0] == (exact ? a[$0] : Half.toFloat(Half.fromFloat(a[$0]))) }
            #expect(ok, "\(e.name) is not the F16 rounding of the original")
        }
        let want = try model.logits(tokens: t, batch: 1, seqLen: 16), got = try back.logits(tokens: t, batch: 1, seqLen: 16)
        let d = maxAbsDiff(want, got)
        let mean = zip(want, got).reduce(0) { $0 + abs($1.0 - $1.1) } / Float(want.count)
        #expect(d < 0.05 && mean < 0.01, "max |Δlogit| \(d), mean \(mean)")
        let V = model.config.vocabSize
        func top1(_ l: [Float], _ p: Int) -> Int { (0..<V).max { l[p * V + $0] < l[p * V + $1] }! }
        #expect((0..<16).allSatisfy { top1(want, $0) == top1(got, $0) })
    }
}

