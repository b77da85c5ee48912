import Foundation

extension BPETokenizer {
    /// Loads a Hugging Face `tokenizer.json` of model type BPE with a byte-level pre-tokenizer.
    ///
    /// Reads `model.vocab`, `model.merges` (`"a b"` strings or `["a", "b"]` pairs),
    /// `model.ignore_merges`, `added_tokens` (special ones become control tokens, the others
    /// user-defined) and `pre_tokenizer`, which must be one of: `ByteLevel` with `use_regex`
    /// (gpt2); `Sequence[Digits(individual_digits), ByteLevel]` (smollm); or
    /// `Sequence[Split(Regex), ByteLevel(use_regex: false)]` with Llama 3's or Qwen2's expression.
    /// BOS and EOS come from `bos_token` and `eos_token` of a `tokenizer_config.json` next to the
    /// file, when there is one.
    public convenience init(tokenizerJSONPath path: String) throws {
        let data = try RegularFile.read(path, what: "tokenizer.json", cap: 256 << 20)
        let file = (path as NSString).lastPathComponent
        // Parsed, the JSON takes about 16 bytes of memory per byte of text (Qwen2's 5 MB file: 88 MB).
        try MemoryBudget.check(20 * data.count, what: "tokenizer.json '\(file)' (\(data.count) bytes) parsed",
                               fix: "the file is corrupt, or too large for this machine")
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PruneError(.badFormat, "tokenizer.json '\(file)': the file is not a JSON object; pass a Hugging Face tokenizer.json")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw PruneError(.badFormat, "tokenizer.json '\(file)': key 'model' is missing or not an object")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw PruneError(.unsupported, "tokenizer.json '\(file)': model.type '\(ByteReader.shown(type))' is not supported; only 'BPE' is")
        }
        var (tokens, types) = try Self.jsonVocabulary(model: model, added: root["added_tokens"], file: file)
        if types.allSatisfy({ $0 == 1 }) { types = [] }
        let pairs = try Self.jsonMerges(model["merges"], file: file)
        var pre = try Self.jsonPreTokenizer(root["pre_tokenizer"], file: file)
        if let ignore = model["ignore_merges"] as? Bool {
            pre = PreTokenizer(pattern: pre.pattern, isolateDigits: pre.isolateDigits, maxDigits: pre.maxDigits, ignoreMerges: ignore)
        }
        let ids = Dictionary(tokens.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { $1 })
        let config = Self.jsonConfig(nextTo: path)
        func specialId(_ key: String) -> Int? {
            let v = config[key]
            let text = (v as? String) ?? ((v as? [String: Any])?["content"] as? String)
            return text.flatMap { ids[$0] }
        }
        do {
            try self.init(tokens: tokens, mergePairs: pairs, tokenTypes: types.isEmpty ? nil : types, preTokenizer: pre,
                          bosTokenId: specialId("bos_token"), eosTokenId: specialId("eos_token"))
        } catch let e as PruneError {
            throw PruneError(e.code, "tokenizer.json '\(file)': \(e.message)")
        }
    }

    /// Tokens and GGUF token types by id from `model.vocab` and `added_tokens`.
    static func jsonVocabulary(model: [String: Any], added: Any?, file: String) throws -> ([String], [Int]) {
        guard let vocab = model["vocab"] as? [String: Any] else {
            throw PruneError(.badFormat, "tokenizer.json '\(file)': key 'model.vocab' is missing or not an object")
        }
        var entries: [(String, Int, Int)] = []
        for (token, value) in vocab {
            guard let id = jsonInt(value), (0..<(1 << 24)).contains(id) else {
                throw PruneError(.badFormat, "tokenizer.json '\(file)': model.vocab['\(ByteReader.shown(token))'] = '\(ByteReader.shown("\(value)"))' is not an id in [0, 16777216)")
            }
            entries.append((token, id, 1))
        }
        for (i, item) in ((added as? [Any]) ?? []).enumerated() {
            guard let a = item as? [String: Any], let id = jsonInt(a["id"]),
                  (0..<(1 << 24)).contains(id), let content = a["content"] as? String else {
                throw PruneError(.badFormat, "tokenizer.json '\(file)': added_tokens[\(i)] lacks an 'id' in [0, 16777216) or a 'content' string")
            }
            let special = (a["special"] as? Bool) ?? false
            entries.append((content, id, special ? controlType : userDefinedType))
        }
        let size = (entries.map { $0.1 }.max() ?? -1) + 1
        func hole(_ id: Int) -> PruneError {
            PruneError(.badFormat, "tokenizer.json '\(file)': no token has id '\(id)' although ids go up to \(size - 1); ids must be contiguous")
        }
        // Ids beyond the number of entries leave a hole: found before allocating for the largest id.
        guard size <= entries.count else {
            let ids = Set(entries.map { $0.1 })
            throw hole((0...entries.count).first { !ids.contains($0) } ?? 0)
        }
        var tokens = [String?](repeating: nil, count: size)
        var types = [Int](repeating: 1, count: size)
        // Vocabulary first, then added tokens, so an added token overrides its vocabulary entry.
        for (token, id, type) in entries.sorted(by: { $0.2 < $1.2 }) {
            tokens[id] = token
            types[id] = type
        }
        guard let missing = tokens.firstIndex(of: nil) else {
            return (tokens.compactMap { $0 }, types)
        }
        throw hole(missing)
    }

    /// An integer JSON value, or nil.
    static func jsonInt(_ v: Any?) -> Int? {
        (v as? Int) ?? (v as? NSNumber)?.intValue
    }

    /// Merge pairs by rank from `model.merges`.
    static func jsonMerges(_ value: Any?, file: String) throws -> [(String, String)] {
        guard let list = value as? [Any] else {
            throw PruneError(.badFormat, "tokenizer.json '\(file)': key 'model.merges' is missing or not an array")
        }
        return try list.enumerated().map { rank, item in
            if let pair = item as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                return (a, b)
            }
            if let s = item as? String, let sep = s.utf8.dropFirst().firstIndex(of: 0x20) {
                return (String(s[s.startIndex..<sep]), String(s[s.utf8.index(after: sep)...]))
            }
            throw PruneError(.badFormat, "tokenizer.json '\(file)': model.merges[\(rank)] = '\(ByteReader.shown("\(item)"))' is neither 'left right' nor [left, right]")
        }
    }

    /// Llama 3's split expression as tokenizer.json writes it.
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's split expression as tokenizer.json writes it.
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pre-tokenizer that a `pre_tokenizer` object describes.
    static func jsonPreTokenizer(_ value: Any?, file: String) throws -> PreTokenizer {
        func type(_ v: Any?) -> String? { (v as? [String: Any])?["type"] as? String }
        func isByteLevel(_ v: Any?, regex: Bool) -> Bool {
            guard let o = v as? [String: Any], type(o) == "ByteLevel" else { return false }
            return ((o["use_regex"] as? Bool) ?? true) == regex && !((o["add_prefix_space"] as? Bool) ?? false)
        }
        let obj = value as? [String: Any]
        if isByteLevel(obj, regex: true) { return .gpt2 }
        if type(obj) == "Sequence", let parts = obj?["pretokenizers"] as? [Any], parts.count == 2 {
            let first = parts[0] as? [String: Any]
            if type(first) == "Digits", (first?["individual_digits"] as? Bool) == true, isByteLevel(parts[1], regex: true) {
                return .smollm
            }
            if type(first) == "Split", isByteLevel(parts[1], regex: false),
               let regex = (first?["pattern"] as? [String: Any])?["Regex"] as? String {
                if regex == llama3Regex { return .llama3Merging }
                if regex == qwen2Regex || regex == qwen2Regex.replacingOccurrences(of: "(?i:'s|'t|'re|'ve|'m|'ll|'d)", with: "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])") {
                    return .qwen2
                }
            }
        }
        // JSONSerialization traps on a value that is not an array or object (null, a string, a number).
        let shown: String
        if let v = value, JSONSerialization.isValidJSONObject(v), let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) {
            shown = String(decoding: data.prefix(300), as: UTF8.self)
        } else if let v = value, !(v is NSNull) {
            shown = ByteReader.shown("\(v)")
        } else {
            shown = "null"
        }
        throw PruneError(.unsupported, "tokenizer.json '\(file)': pre_tokenizer '\(shown)' is not supported; supported: ByteLevel, Sequence[Digits(individual_digits), ByteLevel], Sequence[Split(Llama 3 or Qwen2 regex), ByteLevel(use_regex: false)]")
    }

    /// The `tokenizer_config.json` next to a `tokenizer.json`, or an empty object.
    static func jsonConfig(nextTo path: String) -> [String: Any] {
        let configPath = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")
        guard let data = try? RegularFile.read(configPath, what: "tokenizer_config.json", cap: 64 << 20),
              let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [:] }
        return obj
    }
}
