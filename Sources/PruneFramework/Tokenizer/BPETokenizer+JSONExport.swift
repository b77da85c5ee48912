import Foundation

extension BPETokenizer {
    /// The tokenizer as a Hugging Face `tokenizer.json` (byte-level BPE), which
    /// `init(tokenizerJSONPath:)` and the `tokenizers` library read back as the same tokenizer.
    ///
    /// Every token is in `model.vocab` under its id (the `tokenizers` library renumbers added tokens
    /// that are not); control tokens (GGUF type 3) are also special `added_tokens`, user-defined
    /// ones (type 4) plain added tokens. Keys are sorted, so the same tokenizer
    /// always gives the same bytes.
    public func tokenizerJSON() throws -> Data {
        var vocab: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            let type = tokenTypes?[id] ?? 1
            vocab[token] = id
            if type == Self.controlType || type == Self.userDefinedType {
                added.append(["id": id, "content": token, "special": type == Self.controlType, "single_word": false,
                              "lstrip": false, "rstrip": false, "normalized": type != Self.controlType])
            }
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true]
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": preTokenizer.ignoreMerges, "vocab": vocab, "merges": mergePairs.map { [$0.0, $0.1] },
        ]
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": try preTokenizerJSON(byteLevel: byteLevel),
            "post_processor": NSNull(), "decoder": byteLevel, "model": model,
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }

    /// `tokenizer_config.json`: the BOS and EOS tokens, and that nothing is added to a text.
    public func tokenizerConfigJSON() throws -> Data {
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": false,
                                     "add_eos_token": false, "clean_up_tokenization_spaces": false]
        if let bos = bosTokenId { config["bos_token"] = tokens[bos] }
        if let eos = eosTokenId { config["eos_token"] = tokens[eos] }
        return try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
    }

    /// The `pre_tokenizer` object of this tokenizer's split (the forms `jsonPreTokenizer` reads).
    func preTokenizerJSON(byteLevel: [String: Any]) throws -> [String: Any] {
        func split(_ regex: String) -> [String: Any] {
            var plain = byteLevel
            plain["use_regex"] = false
            return ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false], plain]]
        }
        switch (preTokenizer.pattern, preTokenizer.isolateDigits, preTokenizer.maxDigits) {
        case (.gpt2, false, _): return byteLevel
        case (.gpt2, true, _): return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        case (.llama3, _, 3): return split(Self.llama3Regex)
        case (.llama3, _, 1): return split(Self.qwen2Regex)
        default:
            throw PruneError(.unsupported, "tokenizer.json: this tokenizer's pre-tokenizer (\(preTokenizer)) has no tokenizer.json form")
        }
    }
}
