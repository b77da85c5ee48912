import Foundation

/// What an exported GGUF stores its tensors as.
public enum GGUFOutputType: Equatable, Sendable, CustomStringConvertible {
    /// Each tensor in the type it had in the input; a matrix whose pruned rows no longer fill that
    /// type's blocks falls back as llama-quantize does (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, …).
    case sameAsInput
    /// llama-quantize's type for each tensor under this file type.
    case mix(QuantizationMix)
    /// The mix's default type for every matrix, as llama-quantize's `--pure` (`q4_k`: Q4_K, `q5_k`:
    /// Q5_K), rows that do not fill its blocks falling back as in a mix.
    case pure(QuantizationMix)

    public static let f32 = GGUFOutputType.mix(.f32)
    public static let f16 = GGUFOutputType.mix(.f16)
    public static let q8_0 = GGUFOutputType.mix(.q8_0)

    /// Every name a recipe may give: `same-as-input`, llama-quantize's file types, and `q4_k`, `q5_k`
    /// for every matrix in one k-quant.
    public static var names: [String] { ["same-as-input"] + QuantizationMix.allCases.map(\.rawValue) + Array(pureNames.keys).sorted() }

    static let pureNames: [String: QuantizationMix] = ["q4_k": .q4_K_M, "q5_k": .q5_K_M]

    /// `same-as-input` or a llama-quantize file type, in any case.
    public init(name: String) throws {
        if name == "same-as-input" {
            self = .sameAsInput
        } else if let mix = Self.pureNames[name.lowercased()] {
            self = .pure(mix)
        } else if let mix = try? QuantizationMix(name: name) {
            self = .mix(mix)
        } else {
            throw PruneError(.invalidArgument, "output type '\(name)' is not one of: \(Self.names.joined(separator: ", "))")
        }
    }

    public var description: String {
        switch self {
        case .sameAsInput: "same-as-input"
        case .mix(let m): m.rawValue
        case .pure(let m): Self.pureNames.first { $0.value == m }?.key ?? m.rawValue + "-pure"
        }
    }
}

extension GGMLType {
    /// True when the GGUF writer can encode this type.
    public var canBeWritten: Bool { quantizableTypes.contains(self) }
}

/// The type each tensor of an export was written in, and the matrices whose rows did not fit the
/// type asked for.
public struct GGUFExportSummary: Codable, Sendable, Equatable {
    public struct Fallback: Codable, Sendable, Equatable {
        public var tensor: String
        public var type: String
        public var instead: String
    }

    /// Tensors per ggml type name ("Q4_K": 120, ...).
    public var tensorsPerType: [String: Int]
    public var fallbacks: [Fallback]

    enum CodingKeys: String, CodingKey { case tensorsPerType = "tensors_per_type", fallbacks }
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
    ///
    /// `type`: a llama-quantize file type (each tensor as `llama_model_quantize` would give it), or
    /// `same-as-input`, which takes each tensor's type from `inputTypes` (default: `source`'s).
    /// An f16 matrix holding a value beyond f16's range is written f32.
    @discardableResult
    public func writeGGUF(to path: String, type: GGUFOutputType = .f16, source: GGUFFile? = nil, inputTypes: [String: GGMLType]? = nil,
                          tokenizer: BPETokenizer? = nil, name: String? = nil,
                          progress: ((Int, Int) -> Void)? = nil) throws -> GGUFExportSummary {
        let target = try Architectures.named(config.architecture).ggufTarget(for: config)
        let dir = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.isEmpty ? "." : dir, isDirectory: &isDir), isDir.boolValue else {
            throw PruneError(.fileNotFound, "cannot write GGUF '\(path)': directory '\(dir)' does not exist; create it first")
        }
        let layout = TensorNames.layout(for: config)
        var choices = try ggufTensorTypes(type, layout: layout, inputTypes: inputTypes ?? source?.tensorTypes, target: target)
        var w = GGUFWriter()
        let fileType = Self.fileType(type, choices: choices, source: source)
        for (key, value) in try ggufMetadata(type: type, source: source, tokenizer: tokenizer, name: name, target: target, fileType: fileType) {
            w.set(key, value)
        }
        // Each tensor is read and encoded while the file is written, so one is in memory at a time.
        let config = config
        for (i, (tensorName, shape)) in layout.enumerated() {
            // A value beyond f16's range would become inf: keep that tensor in f32.
            if choices[i].type == .f16 && !params.withValues(tensorName, HalfFloat.fits) { choices[i] = TensorTypeChoice(.f32, replaced: .f16) }
            try w.addTensor(name: tensorName, shape: shape, type: choices[i].type) { [params] in
                var data = params.withValues(tensorName) { Array($0) }
                data.withUnsafeMutableBufferPointer {
                    HFNames.convertRoPERows($0, canonical: tensorName, config: config, from: config.ropeLayout, to: target.ropeLayout)
                }
                return data
            }
        }
        try w.write(to: path, progress: progress)
        return Self.summary(layout, choices)
    }

    /// The type of each tensor of `layout` under `type`.
    func ggufTensorTypes(_ type: GGUFOutputType, layout: [(name: String, shape: [Int])], inputTypes: [String: GGMLType]?,
                         target: GGUFTarget) throws -> [TensorTypeChoice] {
        let c = config
        switch type {
        case .mix(let mix), .pure(let mix):
            let info = QuantizationModelInfo(architecture: target.architecture, layerCount: c.nLayers, headCount: c.nHead.first ?? 0,
                                             kvHeadCount: c.nKVHead.first ?? 0, hasOutputHead: !c.tiedEmbeddings)
            if case .pure = type { return mix.tensorTypes(layout, model: info, sourceType: .f32, pure: true) }
            return mix.tensorTypes(layout, model: info, sourceType: .f32)
        case .sameAsInput:
            guard let inputTypes else {
                throw PruneError(.invalidArgument, "GGUF export: output type 'same-as-input' needs the input model's tensor types; give the source model or another output type")
            }
            return try layout.map { name, shape in
                guard shape.count == 2, let rowLength = shape.last else { return TensorTypeChoice(.f32) }
                let t = inputTypes[name] ?? .f16
                guard quantizableTypes.contains(t) else {
                    throw PruneError(.unsupported, "GGUF export: tensor '\(name)' is \(t.name) in the input, which this package cannot write; set output.type to one of \(GGUFOutputType.names.dropFirst().joined(separator: ", "))")
                }
                return rowLength % t.blockSize == 0 ? TensorTypeChoice(t) : QuantizationMix.fallback(t, rowLength: rowLength)
            }
        }
    }

    /// `general.file_type`: the mix's, or for `same-as-input` the source's (else that of the most
    /// common matrix type).
    static func fileType(_ type: GGUFOutputType, choices: [TensorTypeChoice], source: GGUFFile?) -> UInt32 {
        switch type {
        case .mix(let mix), .pure(let mix): return mix.llamaFileType
        case .sameAsInput: break
        }
        if let v = source?["general.file_type"]?.int, let t = UInt32(exactly: v) { return t }
        let counts = Dictionary(grouping: choices.map(\.type).filter { $0 != .f32 }, by: { $0 }).mapValues(\.count)
        let common = counts.max { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }?.key ?? .f32
        return QuantizationMix.allCases.first { $0.defaultType == common }?.llamaFileType ?? 1
    }

    /// Tensors per type and the fallbacks, for the report.
    static func summary(_ layout: [(name: String, shape: [Int])], _ choices: [TensorTypeChoice]) -> GGUFExportSummary {
        var perType: [String: Int] = [:]
        var fallbacks: [GGUFExportSummary.Fallback] = []
        for ((name, _), c) in zip(layout, choices) {
            perType[c.type.name, default: 0] += 1
            if let r = c.replaced { fallbacks.append(.init(tensor: name, type: c.type.name, instead: r.name)) }
        }
        return GGUFExportSummary(tensorsPerType: perType, fallbacks: fallbacks)
    }

    /// The metadata of an exported file, in file order.
    func ggufMetadata(type: GGUFOutputType, source: GGUFFile?, tokenizer: BPETokenizer? = nil, name: String?,
                      target: GGUFTarget? = nil, fileType: UInt32? = nil) throws -> [(key: String, value: GGUFValue)] {
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
            ("general.file_type", .uint32(fileType ?? Self.fileType(type, choices: [], source: source))),
            // llama-quantize's marker of the block formats' version (2 since ggml's 2023 change).
            ("general.quantization_version", .uint32(2)),
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
