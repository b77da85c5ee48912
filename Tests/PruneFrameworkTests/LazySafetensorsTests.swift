import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// A Hugging Face model loads lazily: its tensors stay in the mapped safetensors files and are read
/// row by row when used, Q/K rows reordered into the model's RoPE layout on the way, giving the
/// values an eager load of the same files gives.
@Suite struct LazySafetensorsTests {
    /// A fresh temporary directory, removed by the caller.
    func temporaryFolder() -> String { NSTemporaryDirectory() + "prune-lazy-st-\(UUID().uuidString)" }

    /// `values` as the dtype stores them.
    func rounded(_ values: [Float], _ dtype: SafetensorsDType) -> [Float] {
        switch dtype {
        case .f32: values
        case .f16: values.map { Half.toFloat(Half.fromFloat($0)) }
        case .bf16: values.map { Half.bf16ToFloat(Half.bf16FromFloat($0)) }
        }
    }

    /// Row ranges of a tensor of `rows` rows in heads of `headDim` rows: whole, single rows at
    /// both ends, and ranges starting and ending inside heads.
    func oddRanges(rows: Int, headDim: Int) -> [Range<Int>] {
        let bounds = [(0, rows), (0, 1), (rows - 1, rows), (1, rows - 1), (headDim / 2, headDim + 1),
                      (headDim - 1, 2 * headDim + 3), (3, rows - headDim / 2)]
        return bounds.filter { $0.0 >= 0 && $0.0 < $0.1 && $0.1 <= rows }.map { $0.0..<$0.1 }
    }

    // MARK: - Row mapping

    @Test(arguments: [(1, 2, 3), (3, 4, 5), (2, 8, 1), (5, 6, 2), (4, 64, 1)])
    func ropeSourceRowIsTheConvertRoPERowsPermutation(heads: Int, headDim: Int, cols: Int) {
        var rng = SplitMix64(seed: UInt64(heads * 1000 + headDim))
        let config = ModelConfig(vocabSize: 1, hiddenSize: cols, nLayers: 1, headDim: headDim, nHead: [heads], nKVHead: [heads],
                                 ffnDim: [1], ropeBase: 10000, rmsEps: 1e-5, contextLength: 8, tiedEmbeddings: true)
        let rows = heads * headDim
        let original = (0..<(rows * cols)).map { _ in rng.nextSymmetric() }
        for (from, to) in [(RoPELayout.halves, RoPELayout.adjacentPairs), (.adjacentPairs, .halves), (.halves, .halves)] {
            var converted = original
            converted.withUnsafeMutableBufferPointer {
                HFNames.convertRoPERows($0, canonical: TensorNames.attnQ(0), config: config, from: from, to: to)
            }
            for r in 0..<rows {
                let s = HFNames.ropeSourceRow(r, headDim: headDim, from: from, to: to)
                #expect(Array(converted[(r * cols)..<((r + 1) * cols)]) == Array(original[(s * cols)..<((s + 1) * cols)]),
                        "\(from) → \(to): row \(r) from \(s)")
            }
        }
    }

    // MARK: - Tiny models

    /// LLaMA (GQA, per-layer widths, tied and untied heads) and Qwen2 (q/k/v biases, halves layout).
    static let configs: [(String, ModelConfig)] = {
        var untied = tinyConfig(layers: 3)
        untied.tiedEmbeddings = false
        var qwen = tinyConfig(layers: 2)
        (qwen.architecture, qwen.attentionBias, qwen.ropeLayout, qwen.tiedEmbeddings) = ("qwen2", true, .halves, false)
        return [("llama tied", tinyConfig(layers: 2)), ("llama untied", untied), ("qwen2", qwen)]
    }()

    @Test(arguments: [SafetensorsDType.f32, .f16, .bf16])
    func aSavedTinyModelLoadsLazilyWithTheSameValues(dtype: SafetensorsDType) throws {
        for (i, (label, c)) in Self.configs.enumerated() {
            let dir = temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let model = try Transformer(randomWith: c, seed: UInt64(30 + i), scale: 0.3)
            try model.saveSafetensors(directory: dir, dtype: dtype)
            let back = try Transformer(safetensorsDirectory: dir)
            #expect(back.config == c, "\(label)")
            #expect(back.params.isLazy && back.params.residentBytes == 0, "\(label), \(dtype): \(back.params.residentBytes) bytes resident")
            #expect(back.params.entries == model.params.entries, "\(label)")
            for e in model.params.entries {
                let want = rounded(Array(model.params.view(e.name)), dtype)
                #expect(back.params.withValues(e.name) { Array($0) } == want, "\(label), \(dtype): \(e.name)")
            }
            try expectRowsMatchWholeTensors(back.params, config: c, label: "\(label), \(dtype)")
            #expect(back.params.residentBytes == 0, "\(label), \(dtype): reading kept \(back.params.residentBytes) bytes")
            if dtype == .f32 {
                let t: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
                #expect(try back.logits(tokens: t, batch: 1, seqLen: t.count) == (try model.logits(tokens: t, batch: 1, seqLen: t.count)), "\(label)")
            }
        }
    }

    /// `readRows` of odd ranges of every Q/K weight (and bias) equals those rows of the whole tensor.
    func expectRowsMatchWholeTensors(_ params: ParameterStore, config c: ModelConfig, label: String) throws {
        for l in 0..<c.nLayers {
            for role in [TensorRole.attnQ, .attnK, .attnQBias, .attnKBias] {
                let name = TensorNames.name(role, l)
                guard let e = params.entry(name) else { continue }
                let whole = params.withValues(name) { Array($0) }
                for rows in oddRanges(rows: e.rowCount, headDim: e.shape.count == 2 ? c.headDim : 1) {
                    var got = [Float](repeating: .nan, count: rows.count * e.rowWidth)
                    try got.withUnsafeMutableBufferPointer { try params.readRows(name, rows, into: $0.baseAddress!) }
                    #expect(got == Array(whole[(rows.lowerBound * e.rowWidth)..<(rows.upperBound * e.rowWidth)]), "\(label): \(name) rows \(rows)")
                }
            }
        }
    }

    /// A LLaMA with q/k biases in the adjacent-pairs layout (a GGUF `deci` model; config.json cannot
    /// describe one): its Q/K weights and biases stored in the halves layout read back in its own.
    @Test func adjacentPairsSourcesReorderWeightsAndBiases() throws {
        var c = tinyConfig(layers: 2)
        c.attentionBias = true
        let model = try Transformer(randomWith: c, seed: 8, scale: 0.3)
        var writer = SafetensorsWriter()
        let names = TensorNames.layout(for: c).map(\.name).filter { HFNames.ropeRows(canonical: $0, config: c) != nil }
        for name in names {
            var rows = Array(model.params.view(name))
            rows.withUnsafeMutableBufferPointer { HFNames.convertRoPERows($0, canonical: name, config: c, from: .adjacentPairs, to: .halves) }
            writer.add(name: name, shape: model.params.entry(name)!.shape, values: rows, dtype: .f32)
        }
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writer.write(to: dir + "/w.safetensors")
        let file = try SafetensorsFile(path: dir + "/w.safetensors")
        #expect(names.contains(TensorNames.name(.attnKBias, 1)) && names.count == 8)
        let store = ParameterStore(lazy: try names.map { name in
            let info = try #require(file.tensor(named: name))
            return (name, info.shape, try file.source(info, canonical: name, config: c))
        })
        for name in names {
            #expect(store.withValues(name) { Array($0) } == Array(model.params.view(name)), "\(name)")
        }
        try expectRowsMatchWholeTensors(store, config: c, label: "adjacent pairs with biases")
    }

    // MARK: - Errors

    @Test func rowsOutsideATensorAreAClearError() throws {
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var writer = SafetensorsWriter()
        writer.add(name: "w", shape: [3, 2], values: [1, 2, 3, 4, 5, 6], dtype: .bf16)
        try writer.write(to: dir + "/m.safetensors")
        let file = try SafetensorsFile(path: dir + "/m.safetensors")
        let info = try #require(file.tensor(named: "w"))
        var out = [Float](repeating: 0, count: 4)
        try out.withUnsafeMutableBufferPointer { try file.read(info, rows: 1..<3, into: $0.baseAddress!) }
        #expect(out == [3, 4, 5, 6])
        let e = #expect(throws: PruneError.self) {
            try out.withUnsafeMutableBufferPointer { try file.read(info, rows: 2..<4, into: $0.baseAddress!) }
        }
        #expect(e?.code == .outOfRange && e?.message == "safetensors file 'm.safetensors': tensor 'w' has 3 rows [3, 2]; rows 2..<4 are out of range",
                "\(e?.message ?? "")")
    }

    /// A NaN in a Q weight is found at load, named as the file stores it: file, Hugging Face name,
    /// element in the file's order.
    @Test func aNonFiniteWeightIsNamedAsStored() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = tinyConfig(layers: 1)
        try Transformer(randomWith: c, seed: 5).saveSafetensors(directory: dir)
        let file = try SafetensorsFile(path: dir + "/model.safetensors")
        let info = try #require(file.tensor(named: "model.layers.0.self_attn.q_proj.weight"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
        let element = 2 * c.hiddenSize + 5
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { bytes.replaceSubrange((info.range.lowerBound + 4 * element)..<(info.range.lowerBound + 4 * element + 4), with: $0) }
        try bytes.write(to: URL(fileURLWithPath: file.path), options: .atomic)
        let e = #expect(throws: PruneError.self) { try Transformer(safetensorsDirectory: dir) }
        #expect(e?.code == .badFormat && e?.message.hasPrefix("safetensors file 'model.safetensors': tensor 'model.layers.0.self_attn.q_proj.weight' holds 'nan' at element \(element) ") == true,
                "\(e?.message ?? "")")
    }

    // MARK: - SmolLM2

    @Test(.requires(.smolLM2)) func smolLM2AsAHuggingFaceDirectoryGivesTheGGUFLogits() throws {
        let gguf = try Transformer(path: TestPaths.model)
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try gguf.saveSafetensors(directory: dir, dtype: .f32)
        let hf = try Transformer(safetensorsDirectory: dir)
        #expect(hf.config == gguf.config)
        #expect(hf.params.isLazy && hf.params.residentBytes == 0)
        let tokens: [Int32] = [1, 504, 2385, 6354, 253, 30, 198, 42, 9, 1350]
        let a = try hf.logits(tokens: tokens, batch: 1, seqLen: tokens.count)
        #expect(a == (try gguf.logits(tokens: tokens, batch: 1, seqLen: tokens.count)))
        // The forward reads the matrices by rows: at most the vectors (norms) stay materialised.
        let vectorBytes = hf.params.entries.filter { $0.shape.count < 2 }.reduce(0) { $0 + 4 * $1.count }
        #expect(hf.params.residentBytes <= vectorBytes, "\(hf.params.residentBytes) bytes resident after the forward")
        try expectRowsMatchWholeTensors(hf.params, config: hf.config, label: "SmolLM2")
    }
}
