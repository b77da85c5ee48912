/// llama-quantize's choice of a type per tensor (`llama_tensor_get_type` in llama.cpp's
/// src/llama-quant.cpp, without importance matrix, overrides or `--pure` unless asked), for the
/// file types an export offers.
///
/// A file type ("mix") has a default tensor type; llama.cpp then keeps some tensors as they are
/// (1-D tensors, norms, biases), gives the output head (and a tied token embedding) Q6_K in the
/// quantized mixes, spends more bits on some attn_v / ffn_down layers in Q4_K_S/M and Q5_K_M,
/// and finally falls back to a smaller-block type when a row length is not a multiple of the
/// chosen type's block (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, and F16 when even 32 does not divide).

/// A file type of llama-quantize that the exporter can write (`llama_ftype`).
public enum QuantizationMix: String, CaseIterable, Sendable, Codable {
    case f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1
    case q4_K_S = "q4_k_s", q4_K_M = "q4_k_m", q5_K_S = "q5_k_s", q5_K_M = "q5_k_m", q6_K = "q6_k"

    /// Parses llama-quantize's name of a file type, in any case; `q4_k` and `q5_k` are, as in
    /// llama-quantize, aliases of `q4_k_m` and `q5_k_m`.
    public init(name: String) throws {
        let key = name.lowercased()
        let aliases: [String: QuantizationMix] = ["q4_k": .q4_K_M, "q5_k": .q5_K_M]
        guard let mix = Self(rawValue: key) ?? aliases[key] else {
            let known = Self.allCases.map(\.rawValue) + aliases.keys.sorted()
            throw PruneError(.invalidArgument, "quantization '\(name)' is not one of \(known.joined(separator: ", "))")
        }
        self = mix
    }

    /// `general.file_type` of the written file (llama.cpp's `llama_ftype`).
    public var llamaFileType: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q4_K_S: 14
        case .q4_K_M: 15
        case .q5_K_S: 16
        case .q5_K_M: 17
        case .q6_K: 18
        case .bf16: 32
        }
    }

    /// The type of every tensor the mix does not single out (`llama_ftype_get_default_type`).
    public var defaultType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q4_K_S, .q4_K_M: .q4_K
        case .q5_K_S, .q5_K_M: .q5_K
        case .q6_K: .q6_K
        }
    }
}

/// What llama-quantize reads about a model when it chooses tensor types.
public struct QuantizationModelInfo: Sendable, Equatable {
    /// `general.architecture` ("llama", "qwen2", "deci", ...).
    public var architecture: String
    /// `<arch>.block_count`: the `n` of ffn_down's layer rules.
    public var layerCount: Int
    /// Query and KV heads of layer 0 (llama.cpp's "70B" rule for `llama` compares them).
    public var headCount: Int
    public var kvHeadCount: Int
    /// Whether the file has an `output.weight`; without one the head is tied to `token_embd.weight`,
    /// which then gets the head's type.
    public var hasOutputHead: Bool
    /// The number of attn_v tensors: the `n` of attn_v's layer rules (the layer count when every
    /// layer has one).
    public var attentionVCount: Int

    public init(architecture: String, layerCount: Int, headCount: Int, kvHeadCount: Int,
                hasOutputHead: Bool, attentionVCount: Int? = nil) {
        self.architecture = architecture
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.hasOutputHead = hasOutputHead
        self.attentionVCount = attentionVCount ?? layerCount
    }

    /// Whether llama.cpp's loader calls the model `LLM_TYPE_70B` (attn_v of Q3_K/Q4_K becomes Q5_K).
    var isType70B: Bool {
        switch architecture {
        case "llama": layerCount == 80 && headCount != kvHeadCount
        case "qwen2", "deci", "olmo": layerCount == 80
        case "jais2": layerCount == 68
        default: false
        }
    }
}

/// The type llama-quantize gives a tensor.
public struct TensorTypeChoice: Sendable, Equatable, CustomStringConvertible {
    /// The type the tensor is written in.
    public let type: GGMLType
    /// When the row length did not fit the mix's choice: that choice, which `type` replaced.
    public let replaced: GGMLType?

    public init(_ type: GGMLType, replaced: GGMLType? = nil) {
        self.type = type
        self.replaced = replaced
    }

    public var description: String { replaced.map { "\(type.name) (instead of \($0.name))" } ?? type.name }
}

extension QuantizationMix {
    /// The type llama.cpp's `llama_model_quantize` gives tensor `name` (a canonical GGUF name)
    /// of row-major `shape` ([rows, cols]: the row length, ggml's ne[0], is `shape.last`).
    ///
    /// Tensors llama-quantize does not quantize (1-D, names not ending in "weight", norms, ...)
    /// keep `sourceType`, the type they have in the file being quantized (an export writes them
    /// f32). attn_v and ffn_down rules use the layer number in the name (`blk.N.`) as llama.cpp's
    /// running count of such tensors, which it is when every layer has one; `tensorTypes` counts
    /// exactly as llama.cpp does. `pure` is llama-quantize's `--pure` (the default type for every
    /// tensor, row-length fallback aside).
    public func tensorType(name: String, shape: [Int], model: QuantizationModelInfo,
                           sourceType: GGMLType = .f32, pure: Bool = false) -> TensorTypeChoice {
        let layer = Self.layerIndex(name) ?? 0
        return choose(name: name, shape: shape, model: model, index: layer, sourceType: sourceType, pure: pure)
    }

    /// The types of all of a file's tensors, in the given order, with llama.cpp's bookkeeping:
    /// attn_v and ffn_down positions counted over the tensors sorted by layer then name, the
    /// attn_v count and whether the head is tied read from the names (overriding `model`'s).
    public func tensorTypes(_ tensors: [(name: String, shape: [Int])], model: QuantizationModelInfo,
                            sourceType: GGMLType = .f32, pure: Bool = false) -> [TensorTypeChoice] {
        var info = model
        info.attentionVCount = tensors.filter { TensorCategory($0.name).isAttentionV }.count
        info.hasOutputHead = tensors.contains { $0.name == "output.weight" }
        let order = tensors.indices.sorted { a, b in
            let la = Self.layerIndex(tensors[a].name) ?? -1, lb = Self.layerIndex(tensors[b].name) ?? -1
            return la != lb ? la < lb : Array(tensors[a].name.utf8).lexicographicallyPrecedes(tensors[b].name.utf8)
        }
        var counts: [TensorCategory: Int] = [:]
        var out = [TensorTypeChoice](repeating: TensorTypeChoice(sourceType), count: tensors.count)
        for i in order {
            let (name, shape) = tensors[i]
            let category = TensorCategory(name)
            let counted = category.isAttentionV ? TensorCategory.attentionV : category
            let index = counts[counted] ?? 0
            out[i] = choose(name: name, shape: shape, model: info, index: index, sourceType: sourceType, pure: pure)
            if (counted == .attentionV || counted == .ffnDown) && Self.allowsQuantization(name, shape)
                && defaultType.isBlockQuantized && !pure {
                counts[counted] = index + 1
            }
        }
        return out
    }

    /// `llama_tensor_get_type`: source type for tensors llama-quantize leaves alone, the default
    /// type for f32/f16/bf16, else the mix's rule followed by the row-length fallback.
    /// `index`: the tensor's position among the attn_v (or ffn_down) tensors.
    private func choose(name: String, shape: [Int], model: QuantizationModelInfo, index: Int,
                        sourceType: GGMLType, pure: Bool) -> TensorTypeChoice {
        guard Self.allowsQuantization(name, shape) else { return TensorTypeChoice(sourceType) }
        guard defaultType.isBlockQuantized else { return TensorTypeChoice(defaultType) }
        let rowLength = shape.last ?? 1
        let chosen = pure ? defaultType : mixType(category: TensorCategory(name), rowLength: rowLength, model: model, index: index)
        return Self.fallback(chosen, rowLength: rowLength)
    }

    /// `llama_tensor_get_type_impl` for this mix (no imatrix, no experts, no overrides).
    private func mixType(category: TensorCategory, rowLength: Int, model: QuantizationModelInfo, index i: Int) -> GGMLType {
        let type = defaultType
        let falcon = model.architecture == "falcon"
        if category == .output || (!model.hasOutputHead && category == .tokenEmbedding) {
            if falcon || rowLength % type.blockSize != 0 { return .q8_0 }
            return type == .q8_0 ? .q8_0 : .q6_K
        }
        if category.isAttentionV {
            var t = type
            if (self == .q4_K_M || self == .q5_K_M) && Self.useMoreBits(i, model.attentionVCount) {
                t = .q6_K
            } else if self == .q4_K_S && i < 4 {
                t = .q5_K
            }
            if model.isType70B && (t == .q3_K || t == .q4_K) { t = .q5_K }
            return t
        }
        if category == .ffnDown {
            let n = model.layerCount
            switch self {
            case .q4_K_M where falcon: return i < n / 16 ? .q6_K : Self.useMoreBits(i, n) ? .q5_K : .q4_K
            case .q4_K_M, .q5_K_M: return Self.useMoreBits(i, n) ? .q6_K : type
            case .q4_K_S where !falcon: return i < n / 8 ? .q5_K : type
            default: return type
            }
        }
        return type
    }

    /// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one
    /// between.
    static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// `tensor_type_fallback`: a type whose block fits the row length.
    static func fallback(_ type: GGMLType, rowLength: Int) -> TensorTypeChoice {
        guard rowLength % type.blockSize != 0 else { return TensorTypeChoice(type) }
        var t: GGMLType
        switch type {
        case .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs: t = .iq4_nl
        case .q2_K, .q3_K, .tq1_0, .tq2_0: t = .q4_0
        case .q4_K: t = .q5_0
        case .q5_K: t = .q5_1
        case .q6_K: t = .q8_0
        default: t = type
        }
        if rowLength % t.blockSize != 0 { t = .f16 }
        return TensorTypeChoice(t, replaced: type)
    }

    /// `tensor_allows_quantization` with llama-quantize's default parameters (the output head
    /// quantized): at least 2 dimensions (ggml's count, trailing 1s dropped), a name ending in
    /// "weight", and none of the tensors llama.cpp keeps as they are.
    static func allowsQuantization(_ name: String, _ shape: [Int]) -> Bool {
        guard shape.drop(while: { $0 == 1 }).count >= 2, name.hasSuffix("weight") else { return false }
        if name == "position_embd.weight" || name == "token_types.weight" { return false }
        return !keptAsIs.contains { name.contains($0) }
    }

    /// Name fragments of tensors llama-quantize never quantizes (from `tensor_allows_quantization`).
    private static let keptAsIs = [
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
        ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    ]

    /// N of a name starting "blk.N." (llama.cpp's `sscanf(name, "blk.%d.")`).
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        let digits = name.dropFirst(4).prefix { $0.isASCII && $0.isNumber }
        return digits.isEmpty ? nil : Int(digits)
    }
}

/// llama.cpp's `tensor_category`: what a tensor is, from its name.
enum TensorCategory: Hashable {
    case output, tokenEmbedding, attentionQKV, attentionKVB, attentionV, attentionK, attentionQ
    case attentionOutput, ffnUp, ffnGate, ffnDown, other

    init(_ name: String) {
        if name == "output.weight" { self = .output; return }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbedding; return }
        let rules: [(String, TensorCategory)] = [
            ("attn_qkv.weight", .attentionQKV), ("attn_kv_b.weight", .attentionKVB), ("attn_v.weight", .attentionV),
            ("attn_k.weight", .attentionK), ("attn_q.weight", .attentionQ), ("attn_output.weight", .attentionOutput),
            ("ffn_up", .ffnUp), ("ffn_gate", .ffnGate), ("ffn_down", .ffnDown),
        ]
        self = rules.first { name.contains($0.0) }?.1 ?? .other
    }

    /// attn_v-like tensors (`category_is_attn_v`), which share attn_v's rules and count.
    var isAttentionV: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
}

extension GGMLType {
    /// Whether the type is a block quantization (ggml's `ggml_is_quantized`).
    var isBlockQuantized: Bool { blockSize > 1 }
}
