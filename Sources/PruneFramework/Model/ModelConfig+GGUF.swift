import Foundation

extension ModelConfig {
    /// Reads the config from GGUF metadata: `ARCH.block_count`, `ARCH.attention.head_count` (a number,
    /// or a per-layer array as `deci` files hold), ... for a registered architecture (`Architectures`).
    ///
    /// Every value is range-checked under its key, and the tensor table must hold each tensor the
    /// config implies with exactly its shape, so a corrupt value is an error naming the key before
    /// anything is allocated from it.
    public init(gguf f: GGUFFile) throws {
        let m = GGUFMetadataReader(file: f)
        guard let arch = f["general.architecture"]?.string else {
            throw m.error(.badFormat, "metadata key 'general.architecture' is missing or not a string")
        }
        let architecture = try Architectures.forGGUF(ByteReader.shown(arch), file: m.file)
        m.prefix = arch + "."
        let n = try m.int("block_count", in: 0...Limits.layers)
        let hidden = try m.int("embedding_length", in: 1...Limits.width)
        let nHead = try m.perLayer("attention.head_count", n, in: 1...Limits.heads)
        let nKV = try m.perLayer("attention.head_count_kv", n, in: 1...Limits.heads)
        let ffn = try m.perLayer("feed_forward_length", n, in: 1...Limits.ffn)
        let heads = nHead.first ?? 1, keyLength = try m.int("attention.key_length", in: 2...Limits.headDim, default: 0)
        guard keyLength % 2 == 0 else {
            throw m.error(.badFormat, "metadata key '\(arch).attention.key_length' = '\(keyLength)' is odd; RoPE rotates pairs, so a head's width is even")
        }
        if keyLength == 0, hidden % heads != 0 || (hidden / heads) % 2 != 0 {
            throw m.error(.badFormat, "metadata key '\(arch).embedding_length' = \(hidden) divided by '\(arch).attention.head_count' = \(heads) "
                          + "is not an even head width, and '\(arch).attention.key_length' is absent: the file is corrupt")
        }
        // An architecture with biases needs them; one without may still have them (a `deci` file
        // written from a pruned Qwen2), and then every layer must.
        let attentionBias = architecture.attentionBias || f.tensor(named: TensorNames.name(.attnQBias, 0)) != nil
        // attn_output/ffn_down biases (FLAP's compensation): all layers or none (`tensorInfos` checks).
        let outputBias = Self.firstOutputBias(f) != nil
        guard let embd = f.tensor(named: TensorNames.tokenEmbedding), embd.shape.count == 2 else {
            throw m.error(.badFormat, "tensor '\(TensorNames.tokenEmbedding)' is missing or not a matrix")
        }
        self.init(vocabSize: embd.shape[0], hiddenSize: hidden, nLayers: n, headDim: keyLength == 0 ? hidden / heads : keyLength,
                  nHead: nHead, nKVHead: nKV, ffnDim: ffn,
                  ropeBase: try m.positive("rope.freq_base", default: 10000),
                  rmsEps: try m.positive("attention.layer_norm_rms_epsilon", default: 1e-5, below: 1),
                  contextLength: try m.int("context_length", in: 1...Limits.context, default: 2048),
                  tiedEmbeddings: f.tensor(named: TensorNames.output) == nil,
                  bosTokenId: try m.tokenId("tokenizer.ggml.bos_token_id", vocab: embd.shape[0]),
                  eosTokenId: try m.tokenId("tokenizer.ggml.eos_token_id", vocab: embd.shape[0]),
                  architecture: architecture.name, attentionBias: attentionBias, ropeLayout: architecture.ggufRoPE,
                  outputBias: outputBias)
        do { try validate() } catch let e as PruneError {
            throw m.error(e.code, e.message)
        }
        _ = try Self.tensorInfos(f, config: self, arch: arch)
    }

    /// The file's tensor info for each tensor of the config's layout, in layout order; a missing
    /// tensor or a shape the metadata does not imply is an error naming the keys that set it.
    static func tensorInfos(_ f: GGUFFile, config: ModelConfig, arch: String) throws -> [GGUFTensorInfo] {
        let file = (f.path as NSString).lastPathComponent
        let layers = Set(f.tensors.compactMap { TensorNames.layer(of: $0.name) }).count
        return try TensorNames.layout(for: config).map { name, shape in
            guard let info = f.tensor(named: name) else {
                var why = TensorNames.layer(of: name).map { $0 >= layers ? ": '\(arch).block_count' = \(config.nLayers), but the file holds tensors of \(layers) layers" : "" } ?? ""
                if why.isEmpty, TensorNames.parse(name)?.role.outputBiasOf != nil, let other = firstOutputBias(f) {
                    why = ", but the file has '\(ByteReader.shown(other))': attn_output and ffn_down biases are read in every layer or in none"
                }
                throw PruneError(.badFormat, "GGUF file '\(file)': tensor '\(name)' is missing\(why)")
            }
            guard info.shape == shape else {
                let keys = TensorNames.parse(name).map { Self.ggufKeys(for: $0.role).map { "'\(arch).\($0)'" } } ?? []
                throw PruneError(.shapeMismatch, "GGUF file '\(file)': tensor '\(name)' has shape \(info.shape), but the metadata (\(keys.joined(separator: ", "))) implies \(shape): the metadata or the tensor table is corrupt")
            }
            return info
        }
    }

    /// The name of the file's first attn_output or ffn_down bias, nil when it has none.
    static func firstOutputBias(_ f: GGUFFile) -> String? {
        f.tensors.first { TensorNames.parse($0.name)?.role.outputBiasOf != nil }?.name
    }

    /// The metadata keys (without the architecture prefix) a tensor of `role` takes its shape from.
    static func ggufKeys(for role: TensorRole) -> [String] {
        let heads = ["attention.head_count", "attention.key_length"], kv = ["attention.head_count_kv", "attention.key_length"]
        switch role {
        case .tokenEmbedding, .output: return ["embedding_length"]
        case .outputNorm, .attnNorm, .ffnNorm, .attnOutputBias, .ffnDownBias: return ["embedding_length"]
        case .attnQ, .attnOutput: return heads + ["embedding_length"]
        case .attnQBias: return heads
        case .attnK, .attnV: return kv + ["embedding_length"]
        case .attnKBias, .attnVBias: return kv
        case .ffnGate, .ffnUp, .ffnDown: return ["feed_forward_length", "embedding_length"]
        }
    }
}

/// Typed, range-checked reads of a GGUF file's metadata; errors name the file and the key.
final class GGUFMetadataReader {
    let f: GGUFFile
    let file: String
    /// Prepended to keys (`llama.`).
    var prefix = ""

    init(file f: GGUFFile) {
        self.f = f
        file = (f.path as NSString).lastPathComponent
    }

    func error(_ code: PruneError.Code, _ what: String) -> PruneError {
        PruneError(code, "GGUF file '\(file)': \(what)")
    }

    /// The value shown for messages: numbers as written, anything else by type.
    private func shown(_ v: GGUFValue) -> String {
        v.int.map(String.init) ?? v.double.map { "\($0)" } ?? v.typeName
    }

    /// An integer in `range`; `default` when the key is absent (required when nil).
    func int(_ key: String, in range: ClosedRange<Int>, default d: Int? = nil) throws -> Int {
        let full = prefix + key
        guard let v = f[full] else {
            if let d { return d }
            throw error(.badFormat, "metadata key '\(full)' is missing")
        }
        guard let i = v.int else { throw error(.badFormat, "metadata key '\(full)' is '\(shown(v))', not an integer") }
        guard range.contains(i) else {
            throw error(.outOfRange, "metadata key '\(full)' = '\(i)' is out of range [\(range.lowerBound), \(range.upperBound)]: the file is corrupt")
        }
        return i
    }

    /// An integer or a per-layer integer array of `n` entries, each in `range`.
    func perLayer(_ key: String, _ n: Int, in range: ClosedRange<Int>) throws -> [Int] {
        let full = prefix + key
        guard let v = f[full], v.array != nil else { return [Int](repeating: try int(key, in: range), count: n) }
        guard let a = v.intArray else { throw error(.badFormat, "metadata key '\(full)' is a \(v.typeName), not an integer or integer array") }
        guard a.count == n else {
            throw error(.badFormat, "metadata key '\(full)' has \(a.count) entries, but '\(prefix)block_count' is \(n)")
        }
        if let l = a.firstIndex(where: { !range.contains($0) }) {
            throw error(range.lowerBound > 0 && a[l] == 0 ? .unsupported : .outOfRange,
                        "metadata key '\(full)'[\(l)] = '\(a[l])' is out of range [\(range.lowerBound), \(range.upperBound)]\(a[l] == 0 ? " (layers without attention or MLP are not supported)" : "")")
        }
        return a
    }

    /// A finite number greater than 0 (and below `below` when given).
    func positive(_ key: String, default d: Float, below: Double = .infinity) throws -> Float {
        let full = prefix + key
        guard let v = f[full] else { return d }
        guard let x = v.double else { throw error(.badFormat, "metadata key '\(full)' is a \(v.typeName), not a number") }
        guard x.isFinite, x > 0, x < below, Float(x).isFinite, Float(x) > 0 else {
            throw error(.outOfRange, "metadata key '\(full)' = '\(x)' must be a finite number greater than 0\(below.isFinite ? " and below \(below)" : ""): the file is corrupt")
        }
        return Float(x)
    }

    /// A token id below `vocab`, or nil when the key is absent.
    func tokenId(_ key: String, vocab: Int) throws -> Int? {
        guard f[key] != nil else { return nil }
        let saved = prefix
        prefix = ""
        defer { prefix = saved }
        return try int(key, in: 0...(vocab - 1))
    }
}
