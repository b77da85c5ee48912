import Foundation

extension BPETokenizer {
    /// Loads the tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.model` = `gpt2`).
    ///
    /// Reads `tokenizer.ggml.tokens`, `.merges`, `.token_type`, `.pre`, `.bos_token_id` and
    /// `.eos_token_id`. A file without `tokenizer.ggml.pre` gets the plain GPT-2 split expression.
    public convenience init(gguf f: GGUFFile) throws {
        let file = (f.path as NSString).lastPathComponent
        if let model = f["tokenizer.ggml.model"]?.string, model != "gpt2" {
            throw PruneError(.unsupported, "GGUF file '\(file)': tokenizer.ggml.model '\(ByteReader.shown(model))' is not supported; only byte-level BPE ('gpt2') is")
        }
        guard let tokens = f["tokenizer.ggml.tokens"]?.stringArray else {
            throw PruneError(.badFormat, "GGUF file '\(file)': metadata key 'tokenizer.ggml.tokens' is missing or not a string array")
        }
        guard let merges = f["tokenizer.ggml.merges"]?.stringArray else {
            throw PruneError(.badFormat, "GGUF file '\(file)': metadata key 'tokenizer.ggml.merges' is missing or not a string array")
        }
        let pre = f["tokenizer.ggml.pre"]?.string ?? "gpt2"
        guard PreTokenizer.byName[pre] != nil else {
            throw PruneError(.unsupported, "GGUF file '\(file)': 'tokenizer.ggml.pre' = '\(ByteReader.shown(pre))' is not a supported pre-tokenizer; supported: \(PreTokenizer.byName.keys.sorted().joined(separator: ", "))")
        }
        do {
            try self.init(tokens: tokens, merges: merges, tokenTypes: f["tokenizer.ggml.token_type"]?.intArray,
                          preTokenizer: pre,
                          bosTokenId: f["tokenizer.ggml.bos_token_id"]?.int, eosTokenId: f["tokenizer.ggml.eos_token_id"]?.int)
        } catch let e as PruneError {
            throw PruneError(e.code, "GGUF file '\(file)': \(e.message)")
        }
    }
}

extension BPETokenizer {
    /// llama.cpp's `tokenizer.ggml.pre` name for this tokenizer's split.
    var ggufPreTokenizerName: String {
        switch preTokenizer {
        case .smollm: "smollm"
        case .llama3: "llama-bpe"
        case .llama3Merging: "smaug-bpe"
        case .qwen2: "qwen2"
        default: "gpt2"
        }
    }

    /// The `tokenizer.ggml.*` keys that hold this tokenizer in a GGUF file (what `init(gguf:)` and
    /// llama.cpp read): model `gpt2`, the pre-tokenizer's name, tokens, token types, merges, BOS/EOS,
    /// and no BOS added to a text.
    public func ggufMetadata() -> [(key: String, value: GGUFValue)] {
        var out: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(ggufPreTokenizerName)),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array((tokenTypes ?? [Int](repeating: 1, count: tokens.count)).map { .int32(Int32($0)) })),
            ("tokenizer.ggml.merges", .array(mergePairs.map { .string("\($0.0) \($0.1)") })),
        ]
        if let bos = bosTokenId { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        if let eos = eosTokenId { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        out.append(("tokenizer.ggml.add_bos_token", .bool(false)))
        return out
    }
}
