import Foundation

/// Element type of the matrices in an exported GGUF (norm weights are always F32).
public enum GGUFExportType: String, Codable, Sendable {
    case f32, f16, q8_0

    /// The ggml type of a 2-D weight whose rows hold `rowLength` values; Q8_0 needs whole
    /// 32-value blocks per row and falls back to F16 otherwise.
    func matrixType(rowLength: Int) -> GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .q8_0: rowLength % GGMLType.q8_0.blockSize == 0 ? .q8_0 : .f16
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`): 0 all F32, 1 mostly F16, 7 mostly Q8_0.
    var fileType: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q8_0: 7
        }
    }
}

extension Transformer {
    /// Writes the model as GGUF v3, as its architecture's own llama.cpp architecture (`llama`, `qwen2`)
    /// when that loader can hold the widths, as `deci` otherwise (`Architecture.ggufTarget`).
    ///
    /// `source`: the GGUF the model was loaded from; its `tokenizer.*` and `general.*` metadata
    /// (except `general.file_type`, `general.quantization_*`, `general.alignment`) are copied so
    /// llama.cpp can tokenize. Without a source, `tokenizer` (say one read from a Hugging Face
    /// `tokenizer.json`) gives the `tokenizer.*` keys; with neither the file has no tokenizer and
    /// llama.cpp refuses to load it (this package still can). `name` sets `general.name` (default: the source's, else
    /// "pruned model").
    ///
    /// llama.cpp's `llama` and `qwen2` loaders take one width for all layers, and `qwen2` only
    /// full-width queries. `deci` (same tensor names, optional q/k/v biases of any length) reads
    /// `deci.attention.head_count`, `deci.attention.head_count_kv` and `deci.feed_forward_length`
    /// as either a scalar or an array with one entry per layer; they are written as u32 arrays.
    /// `deci` rotates adjacent pairs, so the Q/K rows and biases of a model that rotates halves
    /// (Qwen2) are reordered within each head on the way out, which leaves its attention unchanged.
    /// Scalars are u32 and f32, the exact types llama.cpp's `get_key` demands. Tensors go in the
    /// order `token_embd`, `blk.N.*`, `output_norm`, then `output` (absent when the head is tied).
    /// The file is written atomically: a failure leaves no partial file.
    public func writeGGUF(to path: String, type: GGUFExportType = .f16, source: GGUFFile? = nil, tokenizer: BPETokenizer? = nil,
                          name: String? = nil) throws {
        let target = try Architectures.named(config.architecture).ggufTarget(for: config)
        let dir = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.isEmpty ? "." : dir, isDirectory: &isDir), isDir.boolValue else {
            throw PruneError(.fileNotFound, "cannot write GGUF '\(path)': directory '\(dir)' does not exist; create it first")
        }
        var w = GGUFWriter()
        for (key, value) in try ggufMetadata(type: type, source: source, tokenizer: tokenizer, name: name, target: target) { w.set(key, value) }
        for (tensorName, shape) in TensorNames.layout(for: config) {
            var ggml: GGMLType = shape.count == 1 ? .f32 : type.matrixType(rowLength: shape[shape.count - 1])
            var data = Array(params.view(tensorName))
            // A value beyond f16's range would become inf: keep that tensor in f32.
            if ggml == .f16 && !data.withUnsafeBufferPointer(HalfFloat.fits) { ggml = .f32 }
            data.withUnsafeMutableBufferPointer {
                HFNames.convertRoPERows($0, canonical: tensorName, config: config, from: config.ropeLayout, to: target.ropeLayout)
            }
            try w.addTensor(name: tensorName, shape: shape, data: data, type: ggml)
        }
        try w.write(to: path)
    }

    /// The metadata of an exported file, in file order.
    func ggufMetadata(type: GGUFExportType, source: GGUFFile?, tokenizer: BPETokenizer? = nil, name: String?,
                      target: GGUFTarget? = nil) throws -> [(key: String, value: GGUFValue)] {
        let c = config
        let target = try target ?? Architectures.named(c.architecture).ggufTarget(for: c)
        let arch = target.architecture
        var out: [(key: String, value: GGUFValue)] = [("general.architecture", .string(arch))]
        out.append(("general.name", .string(name ?? source?["general.name"]?.string ?? "pruned model")))
        let copied = try Self.copiedSourceMetadata(source, vocabSize: c.vocabSize)
        out += copied.filter { $0.key.hasPrefix("general.") }
        func fit(_ key: String, _ v: Int) throws -> GGUFValue {
            guard let x = UInt32(exactly: v) else {
                throw PruneError(.outOfRange, "GGUF export: '\(arch).\(key)' = '\(v)' does not fit in a u32; fix the model config")
            }
            return .uint32(x)
        }
        /// One `<arch>.<key>` u32 entry.
        func u32(_ key: String, _ v: Int) throws -> (key: String, value: GGUFValue) {
            ("\(arch).\(key)", try fit(key, v))
        }
        /// A per-layer width: one u32 (`llama`, `qwen2`), or a u32 array with one entry per layer (`deci`).
        func widths(_ key: String, _ a: [Int]) throws -> (key: String, value: GGUFValue) {
            target.perLayerWidths ? ("\(arch).\(key)", .array(try a.map { try fit(key, $0) })) : try u32(key, a.first ?? 0)
        }
        out += [
            try u32("block_count", c.nLayers),
            try u32("context_length", c.contextLength),
            try u32("embedding_length", c.hiddenSize),
            try widths("feed_forward_length", c.ffnDim),
            try widths("attention.head_count", c.nHead),
            try widths("attention.head_count_kv", c.nKVHead),
            try u32("attention.key_length", c.headDim),
            try u32("attention.value_length", c.headDim),
            try u32("rope.dimension_count", c.headDim),
            ("\(arch).rope.freq_base", .float32(c.ropeBase)),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.rmsEps)),
            try u32("vocab_size", c.vocabSize),
            ("general.file_type", .uint32(type.fileType)),
        ]
        out += copied.filter { $0.key.hasPrefix("tokenizer.") }
        if source == nil, let tokenizer {
            guard tokenizer.vocabSize == c.vocabSize else {
                throw PruneError(.shapeMismatch, "GGUF export: the tokenizer has \(tokenizer.vocabSize) tokens but the model's vocabulary is \(c.vocabSize); pass the model's own tokenizer")
            }
            out += tokenizer.ggufMetadata()
        }
        // Keep BOS/EOS for a model that has them but no source tokenizer to copy them from.
        let keys = Set(out.map(\.key))
        for (key, id) in [("tokenizer.ggml.bos_token_id", c.bosTokenId), ("tokenizer.ggml.eos_token_id", c.eosTokenId)] {
            if let id, let v = UInt32(exactly: id), !keys.contains(key) { out.append((key, .uint32(v))) }
        }
        return out
    }

    /// The source's `general.*` and `tokenizer.*` keys that describe the model rather than the
    /// file's encoding; throws when its token list does not match the embedding's row count.
    static func copiedSourceMetadata(_ source: GGUFFile?, vocabSize: Int) throws -> [(key: String, value: GGUFValue)] {
        guard let source else { return [] }
        let dropped: Set<String> = ["general.architecture", "general.name", "general.file_type", "general.alignment"]
        let kept = source.metadata.filter { kv in
            (kv.key.hasPrefix("general.") || kv.key.hasPrefix("tokenizer."))
                && !dropped.contains(kv.key) && !kv.key.hasPrefix("general.quantiz")
        }
        if let tokens = source["tokenizer.ggml.tokens"]?.array, tokens.count != vocabSize {
            let file = (source.path as NSString).lastPathComponent
            throw PruneError(.shapeMismatch, "GGUF export: source '\(file)' has \(tokens.count) tokens in 'tokenizer.ggml.tokens' but the model's vocabulary is \(vocabSize); pass the GGUF the model was loaded from")
        }
        return kept
    }
}
