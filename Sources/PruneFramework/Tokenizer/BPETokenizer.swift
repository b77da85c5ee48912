import Foundation

/// A byte-level BPE tokenizer (GPT-2, SmolLM, Llama 3, Qwen2 style) that reproduces llama.cpp.
///
/// Encoding: special tokens are cut out first (only with `parseSpecial`), the rest is split into
/// pre-tokens by the model's `PreTokenizer`, and each pre-token's UTF-8 bytes are merged pair by
/// pair, lowest merge rank first (leftmost on ties), starting from one symbol per byte. Results are
/// cached per pre-token. Decoding maps each token back to its raw bytes through the GPT-2 byte
/// table (`ByteUnicode`) and decodes UTF-8 once at the end, so `decode(encode(s)) == s`.
///
/// Token types follow GGUF's `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control,
/// 4 user-defined, 5 unused, 6 byte. Control and user-defined tokens are the special tokens:
/// user-defined ones (added tokens such as Qwen2.5's `<tool_call>`) are cut out of every text,
/// control ones only with `parseSpecial`, as llama.cpp does.
/// Instances are immutable apart from the pre-token cache and safe to share between threads.
public final class BPETokenizer: Sendable {
    /// GGUF token type of control tokens (`<|im_start|>`, `<|endoftext|>`, ...).
    static let controlType = 3
    /// GGUF token type of user-defined added tokens.
    static let userDefinedType = 4

    /// Vocabulary entries as stored (byte-level alphabet for normal tokens), indexed by id.
    let tokens: [String]
    /// Vocabulary entry to id (the last id wins for duplicates, as in llama.cpp).
    let ids: [String: Int32]
    /// Raw bytes of each token, indexed by id.
    let bytesOfToken: [[UInt8]]
    /// The merge table and initial symbols.
    let merges: MergeTable
    /// The merge rules by rank, as given (for writing the tokenizer out).
    let mergePairs: [(String, String)]
    /// GGUF token types by id, or nil when every token is normal.
    let tokenTypes: [Int]?
    /// How text is split before merging.
    let preTokenizer: PreTokenizer
    /// Control and user-defined tokens, matched in the text (control ones only with `parseSpecial`).
    let specials: SpecialTokenMatcher
    /// Pre-token bytes to token ids.
    let cache = PieceCache()

    /// The beginning-of-sequence token's id, if the vocabulary names one; `encode` never adds it.
    public let bosTokenId: Int?
    /// The end-of-sequence token's id, if the vocabulary names one.
    public let eosTokenId: Int?

    /// The number of tokens in the vocabulary.
    public var vocabSize: Int { tokens.count }

    /// Builds a tokenizer from a vocabulary, a ranked merge list and a pre-tokenizer name.
    ///
    /// - Parameters:
    ///   - tokens: vocabulary entries by id; normal tokens in the GPT-2 byte-level alphabet.
    ///   - merges: merge rules by rank (first = merged first), each `"left right"`.
    ///   - tokenTypes: GGUF token types by id, or nil for all normal.
    ///   - preTokenizer: a `tokenizer.ggml.pre` name such as `smollm`, `gpt2`, `llama-bpe`, `qwen2`.
    ///   - bosTokenId, eosTokenId: ids of the beginning and end of sequence tokens, if any.
    public convenience init(tokens: [String], merges: [String], tokenTypes: [Int]?, preTokenizer: String,
                            bosTokenId: Int?, eosTokenId: Int?) throws {
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            // As llama.cpp: the separator is the first space after the first byte.
            let u = m.utf8
            guard let sep = u.dropFirst().firstIndex(of: 0x20) else {
                throw PruneError(.badFormat, "BPE tokenizer: merge \(rank) '\(ByteReader.shown(m))' has no space between its two parts; write merges as 'left right'")
            }
            pairs.append((String(m[m.startIndex..<sep]), String(m[u.index(after: sep)...])))
        }
        try self.init(tokens: tokens, mergePairs: pairs, tokenTypes: tokenTypes,
                      preTokenizer: try PreTokenizer.named(preTokenizer), bosTokenId: bosTokenId, eosTokenId: eosTokenId)
    }

    /// Builds a tokenizer from a vocabulary and merge pairs by rank.
    init(tokens: [String], mergePairs: [(String, String)], tokenTypes: [Int]?, preTokenizer: PreTokenizer,
         bosTokenId: Int?, eosTokenId: Int?) throws {
        guard !tokens.isEmpty else {
            throw PruneError(.badFormat, "BPE tokenizer: the vocabulary is empty; pass at least the 256 byte tokens")
        }
        guard tokens.count < Int(Int32.max) else {
            throw PruneError(.outOfRange, "BPE tokenizer: vocabulary size '\(tokens.count)' does not fit token ids of 32 bits")
        }
        if let t = tokenTypes, t.count != tokens.count {
            throw PruneError(.badFormat, "BPE tokenizer: '\(t.count)' token types for \(tokens.count) tokens; pass one type per token or nil")
        }
        for (name, id) in [("BOS", bosTokenId), ("EOS", eosTokenId)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw PruneError(.outOfRange, "BPE tokenizer: \(name) token id '\(id)' is outside the vocabulary [0, \(tokens.count)); pass a valid id or nil")
            }
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        var bytesOfToken: [[UInt8]] = []
        bytesOfToken.reserveCapacity(tokens.count)
        var special: [SpecialTokenMatcher.Candidate] = []
        for (i, t) in tokens.enumerated() {
            ids[t] = Int32(i)
            let type = tokenTypes?[i] ?? 1
            // Unknown, control, user-defined and unused tokens are plain text; the rest byte-level.
            bytesOfToken.append((2...5).contains(type) ? Array(t.utf8) : ByteUnicode.decode(t))
            if (type == Self.controlType || type == Self.userDefinedType) && !t.isEmpty {
                special.append((Array(t.utf8), Int32(i), type == Self.userDefinedType))
            }
        }
        self.tokens = tokens
        self.ids = ids
        self.bytesOfToken = bytesOfToken
        self.merges = MergeTable(pairs: mergePairs, ids: ids, vocabSize: tokens.count)
        self.mergePairs = mergePairs
        self.tokenTypes = tokenTypes
        self.preTokenizer = preTokenizer
        self.specials = SpecialTokenMatcher(special)
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
    }

    /// Text to token ids; never adds BOS or EOS.
    ///
    /// User-defined tokens written in the text (`<tool_call>`) always become their ids; control
    /// tokens (`<|im_end|>`) only with `parseSpecial`, and are tokenized as ordinary text without it.
    /// Matches are taken leftmost, then longest first.
    public func encode(_ text: String, parseSpecial: Bool = false) -> [Int32] {
        var text = text
        return text.withUTF8 { encode(utf8: $0, parseSpecial: parseSpecial) }
    }

    /// Token ids to text: the tokens' raw bytes, decoded as UTF-8 with invalid sequences replaced.
    ///
    /// Control tokens decode to their text; ids outside the vocabulary decode to nothing.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { bytes.append(contentsOf: tokenBytes(id)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes of one token (possibly part of a UTF-8 sequence), for streaming output.
    ///
    /// Empty for ids outside the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < bytesOfToken.count else { return [] }
        return bytesOfToken[Int(id)]
    }

    /// The id of a vocabulary entry as stored (normal tokens in the byte-level alphabet, so a
    /// leading space is written `Ġ`), or nil.
    public func id(of token: String) -> Int32? {
        ids[token]
    }
}
