import Foundation

/// How a model's Q and K rows pair dimensions for rotary position embeddings.
public enum RoPELayout: String, Codable, Sendable {
    /// Dimension 2i pairs with 2i+1 (llama.cpp's `llama` files: its converter permutes the rows).
    case adjacentPairs = "adjacent-pairs"
    /// Dimension i pairs with i + head_dim/2 (Hugging Face, and llama.cpp's NEOX-style `qwen2` files).
    case halves
}

/// A decoder architecture, registered by name like a criterion: what its files call the tensors and
/// hyperparameters, and what its block holds besides the LLaMA block (biases, RoPE layout).
///
/// Adding an architecture is one file with a struct conforming to this protocol, registered in
/// `Architectures` (the built-ins are listed there). The canonical tensor names are llama.cpp's
/// (`TensorNames`); an architecture maps them to its Hugging Face names.
public protocol Architecture: Sendable {
    /// The registry name, also `ModelConfig.architecture`: `llama`, `qwen2`.
    var name: String { get }
    /// `general.architecture` values of the GGUF files it reads; the first is the one it writes.
    var ggufNames: [String] { get }
    /// Hugging Face `config.json` `architectures` entries it reads; the first is the one it writes.
    var hfArchitectures: [String] { get }
    /// Hugging Face `model_type`.
    var hfModelType: String { get }
    /// Whether attn_q, attn_k and attn_v carry biases.
    var attentionBias: Bool { get }
    /// The RoPE layout of Q/K rows in its GGUF files (Hugging Face files always rotate halves).
    var ggufRoPE: RoPELayout { get }
    /// True when llama.cpp's loader for `ggufNames[0]` fixes the query width at the residual width
    /// (`attn_q` must be `n_embd × n_embd`, as for `qwen2`), so a model with pruned heads goes to `deci`.
    var ggufFullWidthQueries: Bool { get }
    /// True when llama.cpp's loader for `ggufNames[0]` takes `attn_output.bias` and `ffn_down.bias`
    /// (`llama` does, as optional tensors); when false (`qwen2`, whose loader refuses tensors it does
    /// not create), a model with output biases (`ModelConfig.outputBias`) goes to `deci`.
    var ggufOutputBias: Bool { get }
    /// The Hugging Face name of the tensor of `role` (in layer `l` for per-layer roles).
    func hfName(_ role: TensorRole, layer l: Int) -> String
}

extension Architecture {
    /// The roles its Hugging Face files can hold: the q/k/v bias roles only when it has them, the
    /// output biases never (`LlamaForCausalLM` has an o_proj bias only with q/k/v biases
    /// (`attention_bias`) and a down_proj bias only with gate/up biases (`mlp_bias`); `Qwen2ForCausalLM`
    /// has neither), so a model with output biases is written as GGUF only.
    public var roles: [TensorRole] { TensorRole.allCases.filter { ($0.biasOf == nil || attentionBias) && $0.outputBiasOf == nil } }

    /// The Hugging Face names `LlamaForCausalLM` uses, which Qwen2 and most LLaMA-style models share.
    public func hfName(_ role: TensorRole, layer l: Int) -> String {
        let p = "model.layers.\(l)."
        switch role {
        case .tokenEmbedding: return "model.embed_tokens.weight"
        case .outputNorm: return "model.norm.weight"
        case .output: return "lm_head.weight"
        case .attnNorm: return p + "input_layernorm.weight"
        case .attnQ: return p + "self_attn.q_proj.weight"
        case .attnK: return p + "self_attn.k_proj.weight"
        case .attnV: return p + "self_attn.v_proj.weight"
        case .attnOutput: return p + "self_attn.o_proj.weight"
        case .attnQBias: return p + "self_attn.q_proj.bias"
        case .attnKBias: return p + "self_attn.k_proj.bias"
        case .attnVBias: return p + "self_attn.v_proj.bias"
        case .attnOutputBias: return p + "self_attn.o_proj.bias"
        case .ffnNorm: return p + "post_attention_layernorm.weight"
        case .ffnGate: return p + "mlp.gate_proj.weight"
        case .ffnUp: return p + "mlp.up_proj.weight"
        case .ffnDown: return p + "mlp.down_proj.weight"
        case .ffnDownBias: return p + "mlp.down_proj.bias"
        }
    }
}

/// What a model is written as in GGUF: llama.cpp's architecture name, the RoPE layout its loader
/// applies, and whether the widths are per-layer arrays.
public struct GGUFTarget: Equatable, Sendable {
    public var architecture: String
    public var ropeLayout: RoPELayout
    public var perLayerWidths: Bool

    /// llama.cpp's `deci` (Nemotron): the LLaMA block with per-layer head, KV-head and MLP counts,
    /// adjacent-pair RoPE, optional q/k/v biases of any length and optional attn_output/ffn_down
    /// biases. Any pruned decoder fits it.
    public static let deci = GGUFTarget(architecture: "deci", ropeLayout: .adjacentPairs, perLayerWidths: true)
}

extension Architecture {
    public var ggufFullWidthQueries: Bool { false }
    public var ggufOutputBias: Bool { false }

    /// The architecture's own GGUF name when llama.cpp's loader for it can hold `config` (one width
    /// for all layers, full-width queries where it demands them, output biases where the model has
    /// them); `deci` otherwise.
    public func ggufTarget(for config: ModelConfig) -> GGUFTarget {
        let queriesFit = !ggufFullWidthQueries || config.nHead.allSatisfy { $0 * config.headDim == config.hiddenSize }
        let biasesFit = !config.outputBias || ggufOutputBias
        guard config.isUniform, queriesFit, biasesFit, let own = ggufNames.first else { return .deci }
        return GGUFTarget(architecture: own, ropeLayout: ggufRoPE, perLayerWidths: false)
    }
}

/// The registered architectures.
public enum Architectures {
    private static let lock = NSLock()
    private static var registered: [any Architecture] = [LlamaArchitecture(), Qwen2Architecture(), MistralArchitecture()]

    /// Adds an architecture (replacing one of the same name).
    public static func register(_ a: any Architecture) {
        lock.lock()
        defer { lock.unlock() }
        registered.removeAll { $0.name == a.name }
        registered.append(a)
    }

    /// Every registered architecture, in registration order.
    public static var all: [any Architecture] {
        lock.lock()
        defer { lock.unlock() }
        return registered
    }

    /// The architecture of a registry name (`ModelConfig.architecture`).
    public static func named(_ name: String) throws -> any Architecture {
        guard let a = all.first(where: { $0.name == name }) else {
            throw PruneError(.unsupported, "architecture '\(name)' is not registered; registered: \(all.map(\.name).joined(separator: ", "))")
        }
        return a
    }

    /// The architecture that reads GGUF files of `general.architecture` = `arch`.
    public static func forGGUF(_ arch: String, file: String) throws -> any Architecture {
        guard let a = all.first(where: { $0.ggufNames.contains(arch) }) else {
            throw PruneError(.unsupported, "GGUF file '\(file)': architecture '\(arch)' is not supported; supported: \(unique(all.flatMap(\.ggufNames)).joined(separator: ", "))")
        }
        return a
    }

    /// The names in order, each once (Mistral is read and written as `llama` GGUF, like LLaMA).
    static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// The architecture of a Hugging Face config's `architectures` list and `model_type` (LLaMA when
    /// the config names neither).
    public static func forHF(architectures: [String]?, modelType: String?) throws -> any Architecture {
        if architectures == nil && modelType == nil { return try named(LlamaArchitecture().name) }
        let byName = architectures.flatMap { names in all.first { a in names.contains { a.hfArchitectures.contains($0) } } }
        if let a = byName ?? modelType.flatMap({ t in all.first { $0.hfModelType == t } }) { return a }
        let what = architectures.map { "architectures '\(ByteReader.shown("\($0)"))'" } ?? modelType.map { "model_type '\(ByteReader.shown($0))'" } ?? "no 'architectures' or 'model_type'"
        throw PruneError(.unsupported, "config.json: \(what) is not supported; supported: \(all.flatMap(\.hfArchitectures).joined(separator: ", "))")
    }
}
