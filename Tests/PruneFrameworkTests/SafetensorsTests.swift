import Foundation
import Testing
@testable import PruneFramework

/// A fresh temporary directory, removed by the caller.
private func tempDir(_ tag: String) throws -> String {
    let dir = NSTemporaryDirectory() + "prune-st-\(tag)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A safetensors file from a raw JSON header and a data section.
private func rawFile(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
    let h = Data(header.utf8)
    var out = Data()
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    out.append(h)
    out.append(contentsOf: data)
    return out
}

@Suite struct SafetensorsTests {
    // MARK: - Writer and reader

    @Test(arguments: [SafetensorsDType.f32, .f16, .bf16])
    func writerReaderRoundTrip(dtype: SafetensorsDType) throws {
        let dir = try tempDir("rt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix64(seed: 1)
        let a = (0..<12).map { _ in 3 * rng.nextSymmetric() }
        let b: [Float] = [0, -0, 1, -2.5, 65504, 1e-3, 0.1, 7]
        var w = SafetensorsWriter()
        w.add(name: "a", shape: [3, 4], values: a, dtype: dtype)
        w.add(name: "weird \"name\"\n", shape: [8], values: b, dtype: dtype)
        let path = dir + "/t.safetensors"
        try w.write(to: path, metadata: ["format": "pt", "note": "x\"y"])

        let f = try SafetensorsFile(path: path)
        #expect(f.metadata == ["format": "pt", "note": "x\"y"])
        #expect(f.tensors.map(\.name) == ["a", "weird \"name\"\n"])
        #expect(f.tensors[0].shape == [3, 4] && f.tensors[0].dtype == dtype)
        #expect(f.tensors[0].range.lowerBound % 8 == 0, "data section is 8-byte aligned")
        // Relative precision: 2^-24 (f32, exact), 2^-11 (f16), 2^-8 (bf16).
        let tol: Float = dtype == .f32 ? 0 : dtype == .f16 ? 1.0 / 2048 : 1.0 / 256
        for (name, want) in [("a", a), ("weird \"name\"\n", b)] {
            let got = try f.floats(name)
            #expect(got.count == want.count)
            for (g, x) in zip(got, want) {
                #expect(abs(g - x) <= tol * abs(x) + (dtype == .f16 ? 6e-8 : 0), "\(name): \(g) vs \(x)")
            }
        }
        var buf = [Float](repeating: 0, count: 12)
        try buf.withUnsafeMutableBufferPointer { try f.read("a", into: $0) }
        #expect(buf == (try f.floats("a")))
    }

    @Test(arguments: [
        (Float(1), UInt16(0x3C00), UInt16(0x3F80)),
        (Float(-2), UInt16(0xC000), UInt16(0xC000)),
        (Float(0.5), UInt16(0x3800), UInt16(0x3F00)),
        (Float(65504), UInt16(0x7BFF), UInt16(0x4780)),  // f16 max; bf16 rounds 65504 up to 65536
        (Float(1e6), UInt16(0x7C00), UInt16(0x4974)),   // f16 overflow to inf; bf16 0x4974 = 999424
        (Float(-0.0), UInt16(0x8000), UInt16(0x8000)),
        (Float(5.9604645e-8), UInt16(0x0001), UInt16(0x3380)),  // smallest f16 subnormal, 2^-24
        (Float(0.1), UInt16(0x2E66), UInt16(0x3DCD)),
        (Float.infinity, UInt16(0x7C00), UInt16(0x7F80)),
    ])
    func halfBitPatterns(value: Float, f16: UInt16, bf16: UInt16) {
        #expect(Half.fromFloat(value) == f16, "f16 of \(value)")
        #expect(Half.bf16FromFloat(value) == bf16, "bf16 of \(value)")
        if value.isFinite && abs(value) < 65520 {
            #expect(Half.toFloat(f16) == Float(f16Reference(f16)), "f16 decode")
        }
    }

    @Test func halfRoundingTiesToEven() {
        // bf16: 1 + 2^-8 is halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81): rounds to even.
        #expect(Half.bf16FromFloat(1 + 1.0 / 256) == 0x3F80)
        // 1 + 3·2^-8 is halfway between 0x3F81 (odd) and 0x3F82: rounds up to even.
        #expect(Half.bf16FromFloat(1 + 3.0 / 256) == 0x3F82)
        #expect(Half.bf16FromFloat(1 + 1.0 / 256 + 1.0 / 65536) == 0x3F81)
        // f16: 1 + 2^-11 ties to 1 (0x3C00); 1 + 3·2^-11 ties up to 1 + 2^-9 (0x3C02).
        #expect(Half.fromFloat(1 + 1.0 / 2048) == 0x3C00)
        #expect(Half.fromFloat(1 + 3.0 / 2048) == 0x3C02)
        // 2^-25 is half the smallest subnormal: ties to 0; slightly more rounds to 0x0001.
        #expect(Half.fromFloat(Float(sign: .plus, exponent: -25, significand: 1)) == 0)
        #expect(Half.fromFloat(Float(sign: .plus, exponent: -25, significand: 1.5)) == 1)
        // 65520 is halfway between f16 max 65504 and 65536 (overflow): ties to even, i.e. inf.
        #expect(Half.fromFloat(65519) == 0x7BFF)
        #expect(Half.fromFloat(65520) == 0x7C00)
        #expect(Half.toFloat(Half.fromFloat(.nan)).isNaN)
        #expect(Half.bf16ToFloat(Half.bf16FromFloat(.nan)).isNaN)
    }

    @Test func f16DecodeIsExactForEveryPattern() {
        for h in 0...UInt16.max {
            let f = Half.toFloat(h)
            if f.isNaN { continue }
            #expect(Half.fromFloat(f) == h, "pattern \(String(h, radix: 16))")
        }
    }

    // MARK: - RoPE permutation

    @Test func ropePermuteMatchesHandExample() {
        // n_head 2, head_dim 4, 2 columns; row r holds (10r, 10r+1).
        let hf: [Float] = (0..<8).flatMap { [Float(10 * $0), Float(10 * $0 + 1)] }
        var w = hf
        w.withUnsafeMutableBufferPointer { HFNames.hfToGGUF($0, nHead: 2, headDim: 4, cols: 2) }
        // GGUF row order per head: (0, 2, 1, 3): rotate-half partners become adjacent.
        let rows: [Float] = [0, 2, 1, 3, 4, 6, 5, 7]
        #expect(w == rows.flatMap { [10 * $0, 10 * $0 + 1] })
        w.withUnsafeMutableBufferPointer { HFNames.ggufToHF($0, nHead: 2, headDim: 4, cols: 2) }
        #expect(w == hf)
    }

    @Test func ropePermuteAndInverseAreInverses() {
        var rng = SplitMix64(seed: 3)
        let orig = (0..<(3 * 8 * 5)).map { _ in rng.nextSymmetric() }
        var w = orig
        w.withUnsafeMutableBufferPointer { HFNames.ggufToHF($0, nHead: 3, headDim: 8, cols: 5) }
        #expect(w != orig)
        w.withUnsafeMutableBufferPointer { HFNames.hfToGGUF($0, nHead: 3, headDim: 8, cols: 5) }
        #expect(w == orig)
    }

    @Test func namesMapBothWays() {
        let c = tinyConfig(layers: 2)
        var noTie = c
        noTie.tiedEmbeddings = false
        for (name, _) in TensorNames.layout(for: noTie) {
            let hf = HFNames.hf(canonical: name)
            #expect(hf != nil, "\(name)")
            #expect(hf.flatMap { HFNames.canonical(hf: $0) } == name)
        }
        #expect(HFNames.hf(canonical: "blk.3.attn_q.weight") == "model.layers.3.self_attn.q_proj.weight")
        #expect(HFNames.canonical(hf: "lm_head.weight") == "output.weight")
        #expect(HFNames.canonical(hf: "model.layers.0.self_attn.q_proj.bias") == nil)
        #expect(HFNames.canonical(hf: "model.layers.01.mlp.up_proj.weight") == nil)
    }

    // MARK: - config.json

    @Test func hfConfigRoundTrip() throws {
        var c = tinyConfig(layers: 3)
        c.bosTokenId = 1
        c.eosTokenId = 2
        c.rmsEps = 1e-5
        let json = try HFConfig(c, torchDtype: .bf16).jsonData()
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains("\"prune_per_layer\""))
        #expect(text.contains("\"rms_norm_eps\" : 1e-05"))
        #expect(text.contains("\"torch_dtype\" : \"bfloat16\""))
        let back = try JSONDecoder().decode(HFConfig.self, from: json)
        #expect(try back.modelConfig() == c)

        let uniform = ModelConfig(vocabSize: 50, hiddenSize: 32, nLayers: 2, headDim: 8, nHead: [4, 4],
                                  nKVHead: [2, 2], ffnDim: [64, 64], tiedEmbeddings: false)
        let u = HFConfig(uniform)
        #expect(u.prunePerLayer == nil && u.numAttentionHeads == 4 && u.intermediateSize == 64)
        #expect(try JSONDecoder().decode(HFConfig.self, from: try u.jsonData()).modelConfig() == uniform)
    }

    @Test func hfConfigReadsAStockLlamaConfig() throws {
        let json = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
         "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
         "num_key_value_heads": 3, "rms_norm_eps": 1e-05, "rope_theta": 100000, "vocab_size": 49152,
         "max_position_embeddings": 8192, "tie_word_embeddings": true, "bos_token_id": 1,
         "eos_token_id": [2, 3], "hidden_act": "silu", "rope_scaling": null, "use_cache": true,
         "torch_dtype": "bfloat16", "transformers_version": "4.42.3"}
        """
        let c = try JSONDecoder().decode(HFConfig.self, from: Data(json.utf8)).modelConfig()
        #expect(c.headDim == 64 && c.nHead == [Int](repeating: 9, count: 30) && c.nKVHead.allSatisfy { $0 == 3 })
        #expect(c.ropeBase == 100000 && c.rmsEps == 1e-5 && c.tiedEmbeddings && c.eosTokenId == 2)
    }

    @Test(arguments: [
        (#""model_type": "gpt2""#, "model_type 'gpt2'"),
        (#""rope_scaling": {"type": "llama3"}"#, "rope_scaling"),
        (#""prune_per_layer": {"num_heads": [1]}"#, "prune_per_layer.num_heads"),
        (#""prune_per_layer": {"intermediate_size": [8]}"#, "has 1 entries"),
        (#""hidden_act": "gelu""#, "hidden_act 'gelu'"),
    ])
    func hfConfigRejects(extra: String, fragment: String) throws {
        let dir = try tempDir("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let json = """
        {"hidden_size": 16, "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 4,
         "vocab_size": 10, \(extra)}
        """
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let e = #expect(throws: PruneError.self) { try HFConfig(path: dir + "/config.json").modelConfig() }
        #expect(e?.message.contains(fragment) == true, "\(e?.message ?? "")")
    }

    @Test func hfConfigMissingKey() throws {
        let dir = try tempDir("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"hidden_size": 16}"#.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let e = #expect(throws: PruneError.self) { try HFConfig(path: dir + "/config.json") }
        #expect(e?.message.contains("required key 'intermediate_size' is missing") == true, "\(e?.message ?? "")")
    }

    // MARK: - Malformed files

    static let malformed: [(String, Data, String)] = [
        ("too short", Data([1, 2, 3]), "too short"),
        ("header length past end", rawFile(header: "{}", data: [], declaredLength: 1000), "runs past the end"),
        ("header length over cap", rawFile(header: "{}", data: [], declaredLength: 1 << 40), "exceeds the cap"),
        ("bad JSON", rawFile(header: "{not json", data: []), "not a valid JSON"),
        ("not an object", rawFile(header: "[1, 2]", data: []), "not a valid JSON object"),
        ("missing field", rawFile(header: #"{"a": {"dtype": "F32", "shape": [1]}}"#, data: [0, 0, 0, 0]), "header entry 'a"),
        ("offsets out of range",
         rawFile(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: [0, 0, 0, 0]), "out of range"),
        ("begin after end",
         rawFile(header: #"{"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}"#, data: [0, 0, 0, 0]), "out of range"),
        ("overlapping",
         rawFile(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                 data: [UInt8](repeating: 0, count: 12)), "overlap"),
        ("wrong size for shape",
         rawFile(header: #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 8)), "needs 12"),
        ("unknown dtype",
         rawFile(header: #"{"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "unknown dtype 'Q9'"),
        ("negative dimension",
         rawFile(header: #"{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "non-negative"),
        ("huge shape",
         rawFile(header: #"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "too large"),
        ("metadata not strings",
         rawFile(header: #"{"__metadata__": {"n": 3}}"#, data: []), "__metadata__"),
    ]

    @Test(arguments: 0..<malformed.count)
    func malformedFileIsRejected(_ i: Int) throws {
        let (label, bytes, fragment) = Self.malformed[i]
        let dir = try tempDir("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/bad.safetensors"
        try bytes.write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: PruneError.self, "\(label)") { try SafetensorsFile(path: path) }
        #expect(e?.message.contains(fragment) == true, "\(label): \(e?.message ?? "")")
        #expect(e?.message.contains("bad.safetensors") == true, "\(label): message names the file")
    }

    @Test func readErrorsNameTheTensor() throws {
        let dir = try tempDir("read")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.safetensors"
        try rawFile(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "i": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]}}"#,
                    data: [UInt8](repeating: 0, count: 16)).write(to: URL(fileURLWithPath: path))
        let f = try SafetensorsFile(path: path)
        let missing = #expect(throws: PruneError.self) { try f.floats("nope") }
        #expect(missing?.message.contains("no tensor named 'nope'") == true)
        let i64 = #expect(throws: PruneError.self) { try f.floats("i") }
        #expect(i64?.code == .unsupported && i64?.message.contains("'I64'") == true)
        var small = [Float](repeating: 0, count: 2)
        let size = #expect(throws: PruneError.self) { try small.withUnsafeMutableBufferPointer { try f.read("a", into: $0) } }
        #expect(size?.code == .shapeMismatch && size?.message.contains("tensor 'a' has 1 elements [1], the destination holds 2") == true, "\(size?.message ?? "")")
        let absent = #expect(throws: PruneError.self) { try SafetensorsFile(path: dir + "/none.safetensors") }
        #expect(absent?.code == .fileNotFound && absent?.message.contains("'\(dir)/none.safetensors' does not exist") == true, "\(absent?.message ?? "")")
    }

    @Test func writerReportsMisuse() throws {
        var w = SafetensorsWriter()
        w.add(name: "a", shape: [2], values: [1, 2], dtype: .f32)
        w.add(name: "a", shape: [2], values: [1, 2], dtype: .f32)
        let dup = #expect(throws: PruneError.self) { try w.write(to: NSTemporaryDirectory() + "never.safetensors") }
        #expect(dup?.message.contains("added twice") == true)
        var w2 = SafetensorsWriter()
        w2.add(name: "b", shape: [3], values: [1, 2], dtype: .f32)
        let shape = #expect(throws: PruneError.self) { try w2.write(to: NSTemporaryDirectory() + "never.safetensors") }
        #expect(shape?.message.contains("shape [3] but 2 values") == true)
    }

    // MARK: - Models

    @Test(arguments: [(SafetensorsDType.f32, Float(1e-6)), (.bf16, Float(0.05))])
    func modelSaveLoadGivesSameLogits(dtype: SafetensorsDType, tol: Float) throws {
        let dir = try tempDir("model")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for tied in [true, false] {
            var c = tinyConfig(layers: 3)
            c.tiedEmbeddings = tied
            let m = try Transformer(randomWith: c, seed: 21)
            try m.saveSafetensors(directory: dir, dtype: dtype)
            let f = try SafetensorsFile(path: dir + "/model.safetensors")
            #expect(f.metadata["format"] == "pt")
            #expect((f.tensor(named: "lm_head.weight") == nil) == tied)
            let back = try Transformer(safetensorsDirectory: dir)
            #expect(back.config == c)
            let tokens: [Int32] = (0..<10).map { Int32(($0 * 7 + 3) % c.vocabSize) }
            let a = try m.logits(tokens: tokens, batch: 1, seqLen: 10)
            let b = try back.logits(tokens: tokens, batch: 1, seqLen: 10)
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
            #expect(diff < tol, "tied \(tied), \(dtype): max |Δ| \(diff)")
            // The single-file form finds config.json beside the weights.
            let single = try Transformer(safetensorsDirectory: dir + "/model.safetensors")
            #expect(single.params.entries == back.params.entries)
        }
    }

    @Test func savedQKRowsAreInRotateHalfLayout() throws {
        let dir = try tempDir("qk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = tinyConfig(layers: 1)
        let m = try Transformer(randomWith: c, seed: 2)
        try m.saveSafetensors(directory: dir)
        let q = try SafetensorsFile(path: dir + "/model.safetensors").floats("model.layers.0.self_attn.q_proj.weight")
        let gguf = Array(m.params.view(TensorNames.attnQ(0)))
        let D = c.hiddenSize, hd = c.headDim
        // HF row h·hd + j·hd/2 + i is GGUF row h·hd + 2i + j.
        for h in 0..<c.nHead[0] {
            for i in 0..<(hd / 2) {
                for j in 0..<2 {
                    let hfRow = h * hd + j * hd / 2 + i, gRow = h * hd + 2 * i + j
                    #expect(Array(q[(hfRow * D)..<((hfRow + 1) * D)]) == Array(gguf[(gRow * D)..<((gRow + 1) * D)]))
                }
            }
        }
    }

    @Test func missingConfigJsonIsAClearError() throws {
        let dir = try tempDir("nocfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafetensorsWriter()
        w.add(name: "model.norm.weight", shape: [2], values: [1, 1], dtype: .f32)
        try w.write(to: dir + "/model.safetensors")
        let e = #expect(throws: PruneError.self) { try Transformer(safetensorsDirectory: dir) }
        #expect(e?.code == .fileNotFound)
        #expect(e?.message.contains("config.json") == true && e?.message.contains("does not exist") == true, "\(e?.message ?? "")")
        let none = #expect(throws: PruneError.self) { try Transformer(safetensorsDirectory: dir + "/absent") }
        #expect(none?.code == .fileNotFound && none?.message.contains("'\(dir)/absent'") == true, "\(none?.message ?? "")")
    }

    @Test func loaderRejectsMissingAndExtraTensors() throws {
        let dir = try tempDir("extra")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = tinyConfig(layers: 1)
        let m = try Transformer(randomWith: c, seed: 4)
        try m.saveSafetensors(directory: dir)
        let f = try SafetensorsFile(path: dir + "/model.safetensors")
        // Rewrite without o_proj, then with an extra bias.
        func rewrite(skip: String?, extra: String?) throws {
            var w = SafetensorsWriter()
            for t in f.tensors where t.name != skip {
                w.add(name: t.name, shape: t.shape, values: try f.floats(t.name), dtype: .f32)
            }
            if let extra { w.add(name: extra, shape: [1], values: [0], dtype: .f32) }
            try w.write(to: dir + "/model.safetensors")
        }
        try rewrite(skip: "model.layers.0.self_attn.o_proj.weight", extra: nil)
        let missing = #expect(throws: PruneError.self) { try Transformer(safetensorsDirectory: dir) }
        #expect(missing?.message.contains("'model.layers.0.self_attn.o_proj.weight' is missing") == true, "\(missing?.message ?? "")")
        try rewrite(skip: nil, extra: "model.layers.0.self_attn.q_proj.bias")
        let bias = #expect(throws: PruneError.self) { try Transformer(safetensorsDirectory: dir) }
        #expect(bias?.code == .unsupported && bias?.message.contains("tensor 'model.layers.0.self_attn.q_proj.bias'") == true, "\(bias?.message ?? "")")
    }
}

/// Reference f16 decoding by the textbook formula, in double precision.
private func f16Reference(_ h: UInt16) -> Double {
    let sign: Double = h & 0x8000 != 0 ? -1 : 1
    let e = Int((h >> 10) & 0x1F), m = Double(h & 0x3FF)
    if e == 0 { return sign * m * pow(2, -24) }
    return sign * (1 + m / 1024) * pow(2, Double(e - 15))
}
