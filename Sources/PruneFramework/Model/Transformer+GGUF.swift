import Foundation

extension ModelConfig {
    /// Reads the config from GGUF metadata: `ARCH.block_count`, `ARCH.attention.head_count` (a number,
    /// or a per-layer array as `deci` files hold), ... for a registered architecture (`Architectures`).
    public init(gguf f: GGUFFile) throws {
        let file = (f.path as NSString).lastPathComponent
        guard let arch = f["general.architecture"]?.string else {
            throw PruneError(.badFormat, "GGUF file '\(file)': metadata key 'general.architecture' is missing")
        }
        let architecture = try Architectures.forGGUF(arch, file: file)
        func int(_ key: String) throws -> Int {
            guard let v = f["\(arch).\(key)"]?.int else {
                throw PruneError(.badFormat, "GGUF file '\(file)': metadata key '\(arch).\(key)' is missing or not an integer")
            }
            return v
        }
        /// An integer or a per-layer integer array.
        func perLayer(_ key: String, _ n: Int) throws -> [Int] {
            let full = "\(arch).\(key)"
            if let v = f[full]?.int { return [Int](repeating: v, count: n) }
            if let a = f[full]?.intArray {
                guard a.count == n else {
                    throw PruneError(.badFormat, "GGUF file '\(file)': '\(full)' has \(a.count) entries, block_count is \(n)")
                }
                return a
            }
            throw PruneError(.badFormat, "GGUF file '\(file)': metadata key '\(full)' is missing or not an integer or integer array")
        }
        let n = try int("block_count")
        guard (0...4096).contains(n) else {
            throw PruneError(.outOfRange, "GGUF file '\(file)': '\(arch).block_count' = '\(n)' is out of range [0, 4096]")
        }
        let hidden = try int("embedding_length")
        let nHead = try perLayer("attention.head_count", n)
        let nKV = try perLayer("attention.head_count_kv", n)
        let ffn = try perLayer("feed_forward_length", n)
        if let l = nHead.firstIndex(of: 0) {
            throw PruneError(.unsupported, "GGUF file '\(file)': layer \(l) has no attention heads; attention-free layers are not supported")
        }
        let headDim = f["\(arch).attention.key_length"]?.int ?? (hidden / max(nHead.first ?? 1, 1))
        // An architecture with biases needs them; one without may still have them (a `deci` file
        // written from a pruned Qwen2), and then every layer must.
        let attentionBias = architecture.attentionBias || f.tensor(named: TensorNames.name(.attnQBias, 0)) != nil
        guard let embd = f.tensor(named: TensorNames.tokenEmbedding), embd.shape.count == 2 else {
            throw PruneError(.badFormat, "GGUF file '\(file)': tensor '\(TensorNames.tokenEmbedding)' is missing or not a matrix")
        }
        self.init(vocabSize: embd.shape[0], hiddenSize: hidden, nLayers: n, headDim: headDim,
                  nHead: nHead, nKVHead: nKV, ffnDim: ffn,
                  ropeBase: Float(f["\(arch).rope.freq_base"]?.double ?? 10000),
                  rmsEps: Float(f["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
                  contextLength: f["\(arch).context_length"]?.int ?? 2048,
                  tiedEmbeddings: f.tensor(named: TensorNames.output) == nil,
                  bosTokenId: f["tokenizer.ggml.bos_token_id"]?.int,
                  eosTokenId: f["tokenizer.ggml.eos_token_id"]?.int,
                  architecture: architecture.name, attentionBias: attentionBias, ropeLayout: architecture.ggufRoPE)
        do { try validate() } catch let e as PruneError {
            throw PruneError(e.code, "GGUF file '\(file)': \(e.message)")
        }
    }
}

extension Transformer {
    /// Loads a model from a GGUF file, dequantising every tensor to f32.
    public convenience init(gguf f: GGUFFile) throws {
        let config = try ModelConfig(gguf: f)
        let file = (f.path as NSString).lastPathComponent
        let layout = TensorNames.layout(for: config)
        let store = ParameterStore(layout: layout)
        var infos: [GGUFTensorInfo] = []
        for (name, shape) in layout {
            guard let info = f.tensor(named: name) else {
                throw PruneError(.badFormat, "GGUF file '\(file)': tensor '\(name)' is missing")
            }
            guard info.shape == shape else {
                throw PruneError(.shapeMismatch, "GGUF file '\(file)': tensor '\(name)' has shape \(info.shape), the metadata implies \(shape)")
            }
            infos.append(info)
        }
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: infos.count) { i in
            do { try f.dequantize(infos[i], into: store.view(infos[i].name)) } catch { errors.set(error) }
        }
        if let e = errors.first { throw e }
        try self.init(config: config, params: store)
    }

    /// Opens and loads a GGUF model file.
    public convenience init(path: String) throws {
        try self.init(gguf: try GGUFFile(path: path))
    }
}

/// Keeps the first error thrown by concurrent work.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: Error?
    func set(_ e: Error) {
        lock.lock()
        if first == nil { first = e }
        lock.unlock()
    }
}
