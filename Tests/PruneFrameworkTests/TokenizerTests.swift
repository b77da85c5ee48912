import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// Files the tokenizer tests read.
enum TokenizerFixtures {
    static let model = RequiredFile.smolLM2.path
    static let text = Repository.data + "/wikitext2/wikitext2_test_hfjoin.txt"
    static let referenceIds = Repository.llamaCppFixtures + "/smollm2_wikitext2_test_tokens.i32"

    /// SmolLM2's tokenizer from the GGUF file, loaded once (or the error that loading threw).
    static let smolLM = Result { try BPETokenizer(gguf: try GGUFFile(path: model)) }

    /// Little-endian int32 values of a file.
    static func readInt32s(_ path: String) throws -> [Int32] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw PruneError(.fileNotFound, "test data '\(path)' is missing")
        }
        return d.withUnsafeBytes { raw in
            (0..<(d.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        }
    }
}

/// A seeded generator (SplitMix64) so random strings are the same on every run.
struct TokenizerTestRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random text from fragments that stress the pre-tokenizers and the byte table.
///
/// One piece in eight is a random scalar (unassigned ones included) for which `allowed` holds.
func randomTokenizerText(_ rng: inout TokenizerTestRNG, allowed: (Unicode.Scalar) -> Bool = { _ in true }) -> String {
    let fragments = [
        "Hello", " world", "the", " The", "don't", "I'm", " we'll", "THEY'RE", "'s", "'", "''", "x'", "'ll'",
        "0", "7", "42", " 2024", "3.14159", "1,000,000", "½", "²", "Ⅻ", "٣٤", "१२",
        " ", "  ", "   ", "\t", "\t\t ", "\n", "\n\n", "\r\n", "\r", " \n ", "\u{A0}", "\u{3000}", "\u{2028}", "\u{85}", "\u{200B}",
        "😀", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸🇫🇷", "👍🏽", "1️⃣", "🧑🏿‍🚀",
        "漢字", "日本語のテキスト", "한국어", "中文，标点。",
        "e\u{301}", "a\u{308}\u{304}", "n\u{303}", "\u{301}", "Ç", "ǅ",
        "مرحبا", " العربية", "שָׁלוֹם", "नमस्ते", "ภาษาไทย", "Ελληνικά", "Кириллица",
        ".", ",", "!?", "...", "—", "…", "«»", "\"quoted\"", "(x)", "[]{}", "<|im_end|>", "<|endoftext|>", "@-@", "#$%^&*", "’", "~",
        "\u{0}", "\u{7F}", "\u{FEFF}", "\u{FFFD}", "\u{10FFFF}",
    ]
    var s = ""
    for _ in 0..<Int.random(in: 1...24, using: &rng) {
        if Int.random(in: 0..<8, using: &rng) == 0 {
            // Any scalar, unassigned ones included.
            var v = UInt32.random(in: 0...0x10FFFF, using: &rng)
            if (0xD800...0xDFFF).contains(v) { v = 0x41 }
            if let u = Unicode.Scalar(v), allowed(u) { s.unicodeScalars.append(u) }
        } else {
            s += fragments[Int.random(in: 0..<fragments.count, using: &rng)]
        }
    }
    return s
}

/// A byte-level tokenizer with every byte as a token and a few merges, built in the test.
func tinyByteLevelTokenizer(pre: String) throws -> BPETokenizer {
    var tokens = (0..<256).map { ByteUnicode.encode([UInt8($0)]) }
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ġ Ġ", "1 2", "Ċ Ċ"]
    for m in merges { tokens.append(m.replacingOccurrences(of: " ", with: "")) }
    tokens.append("<|endoftext|>")
    let types = [Int](repeating: 1, count: tokens.count - 1) + [3]
    return try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: pre,
                            bosTokenId: tokens.count - 1, eosTokenId: tokens.count - 1)
}

/// The split of a string by a pre-tokenizer, as strings.
func preTokens(_ text: String, _ pre: PreTokenizer) -> [String] {
    let scalars = text.unicodeScalars.map { $0.value }
    let classes = scalars.map { PreTokenizer.classify($0) }
    var ends: [Int] = []
    scalars.withUnsafeBufferPointer { cps in
        classes.withUnsafeBufferPointer { cls in pre.split(into: &ends, cps, cls, 0, cps.count) }
    }
    var out: [String] = [], start = 0
    for e in ends {
        var v = String.UnicodeScalarView()
        for i in start..<e { if let u = Unicode.Scalar(scalars[i]) { v.append(u) } }
        out.append(String(v))
        start = e
    }
    return out
}

@Suite struct TokenizerTests {
    // MARK: Pre-tokenizers (hand-checked against the regular expressions)

    @Test(arguments: [
        ("smollm", "Hello world! 123", ["Hello", " world", "!", " ", "1", "2", "3"]),
        ("smollm", "I'm don't we'll they're", ["I", "'m", " don", "'t", " we", "'ll", " they", "'re"]),
        ("smollm", "  multiple   spaces", [" ", " multiple", "  ", " spaces"]),
        ("smollm", "a\n\nb", ["a", "\n", "\n", "b"]),
        ("smollm", "x  \n", ["x", "  \n"]),
        ("smollm", "in 2000 .", ["in", " ", "2", "0", "0", "0", " ."]),
        ("smollm", "3.5kg", ["3", ".", "5", "kg"]),
        ("gpt2", "in 2000 .", ["in", " 2000", " ."]),
        ("gpt2", "DON'T 'twas", ["DON", "'", "T", " '", "twas"]),
        ("gpt2", "$100!!  ok", ["$", "100", "!!", " ", " ok"]),
        ("llama-bpe", "Hello world! 12345", ["Hello", " world", "!", " ", "123", "45"]),
        ("llama-bpe", "a\n\n  b", ["a", "\n\n", " ", " b"]),
        ("llama-bpe", "DON'T", ["DON", "'T"]),
        ("llama-bpe", "...\n\nx", ["...\n\n", "x"]),
        ("llama-bpe", "\tfoo $100", ["\tfoo", " $", "100"]),
        ("qwen2", "x12345", ["x", "1", "2", "3", "4", "5"]),
    ])
    func preTokenizerSplits(name: String, text: String, want: [String]) throws {
        #expect(preTokens(text, try PreTokenizer.named(name)) == want)
    }

    // MARK: The real SmolLM2 tokenizer

    @Test(.requires(.smolLM2))
    func smolLMEncodesWikitextLikeLlamaCpp() throws {
        let tok = try TokenizerFixtures.smolLM.get()
        let text = try String(contentsOfFile: TokenizerFixtures.text, encoding: .utf8)
        let want = try TokenizerFixtures.readInt32s(TokenizerFixtures.referenceIds)
        #expect(want.count == 304_978)
        let clock = ContinuousClock()
        var got: [Int32] = []
        let elapsed = clock.measure { got = tok.encode(text) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("encoded \(text.utf8.count) bytes into \(got.count) tokens in \(String(format: "%.3f", seconds)) s (cold cache)")
        let common = min(got.count, want.count)
        if let i = (0..<common).first(where: { got[$0] != want[$0] }) ?? (got.count == want.count ? nil : common) {
            let lo = max(0, i - 8)
            let context = tok.decode(Array(want[lo..<min(want.count, i + 8)]))
            Issue.record("""
                first difference at token \(i) of \(want.count) (got \(got.count) tokens): \
                ours \(Array(got[lo..<min(got.count, i + 8)])), llama.cpp \(Array(want[lo..<min(want.count, i + 8)])), \
                around text \(String(reflecting: context))
                """)
        }
        #expect(tok.decode(got) == text)
    }

    @Test(.requires(.smolLM2))
    func smolLMHandCheckedCases() throws {
        let tok = try TokenizerFixtures.smolLM.get()
        #expect(tok.vocabSize == 49152)
        #expect(tok.bosTokenId == 1 && tok.eosTokenId == 2)
        func id(_ s: String) -> Int32 { tok.id(of: s) ?? -1 }
        // Ids as llama.cpp gives them.
        #expect(tok.encode("Hello world! 123") == [19556, 905, 17, 216, 33, 34, 35])
        #expect(tok.encode("  multiple   spaces") == [216, 2701, 256, 5600])
        #expect(tok.encode(" Hello world") == [id("ĠHello"), id("Ġworld")])
        #expect(tok.encode("2024") == [id("2"), id("0"), id("2"), id("4")])
        #expect(tok.encode("I'm") == [id("I"), id("'m")])
        #expect(tok.encode("they're") == [id("they"), id("'re")])
        #expect(tok.encode("\n") == [198])
        #expect(tok.encode("") == [])
        // Special tokens: whole strings only with parseSpecial.
        let chat = "<|im_start|>user\nHi<|im_end|>"
        #expect(tok.encode(chat, parseSpecial: true) == [1] + tok.encode("user\nHi") + [2])
        #expect(!tok.encode(chat).contains(1))
        #expect(tok.decode(tok.encode(chat, parseSpecial: true)) == chat)
        #expect(tok.tokenBytes(id("ĠHello")) == Array(" Hello".utf8))
        #expect(tok.tokenBytes(-1) == [] && tok.tokenBytes(Int32(tok.vocabSize)) == [])
    }

    // MARK: Round trips

    /// SmolLM2's vocabulary lacks 8 bytes that valid UTF-8 uses (0x04 0x06 0x13 0x14 0x16 0x1D
    /// 0xF1 0xF2), so U+0004, U+0006, U+0013, U+0014, U+0016, U+001D and U+40000…U+BFFFF cannot be
    /// encoded; like llama.cpp the tokenizer drops those bytes. The random text avoids them.
    static func smolLMCanEncode(_ tok: BPETokenizer, _ u: Unicode.Scalar) -> Bool {
        String(u).utf8.allSatisfy { tok.id(of: ByteUnicode.encode([$0])) != nil }
    }

    @Test(.requires(.smolLM2))
    func smolLMDropsBytesMissingFromItsVocabulary() throws {
        let tok = try TokenizerFixtures.smolLM.get()
        let missing = (0..<256).filter { tok.id(of: ByteUnicode.encode([UInt8($0)])) == nil }
        #expect(missing == [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2] + Array(0xF5...0xFF))
        #expect(tok.decode(tok.encode("a\u{4}b\u{50000}c")) == "ab\u{FFFD}\u{FFFD}\u{FFFD}c")
    }

    @Test(.requires(.smolLM2))
    func smolLMRoundTripsRandomText() throws {
        let tok = try TokenizerFixtures.smolLM.get()
        var rng = TokenizerTestRNG(state: 2024)
        for i in 0..<400 {
            let s = randomTokenizerText(&rng) { Self.smolLMCanEncode(tok, $0) }
            let back = tok.decode(tok.encode(s))
            #expect(Array(back.utf8) == Array(s.utf8), "string \(i): \(String(reflecting: s))")
            // Pieces of a multi-byte character stream out as bytes that join back exactly.
            let streamed = tok.encode(s).flatMap { tok.tokenBytes($0) }
            #expect(streamed == Array(s.utf8), "string \(i) streamed")
        }
    }

    @Test(arguments: ["gpt2", "smollm", "llama-bpe", "qwen2"])
    func tinyTokenizerRoundTripsRandomText(pre: String) throws {
        let tok = try tinyByteLevelTokenizer(pre: pre)
        var rng = TokenizerTestRNG(state: 7)
        for i in 0..<300 {
            let s = randomTokenizerText(&rng)
            for special in [false, true] {
                let back = tok.decode(tok.encode(s, parseSpecial: special))
                #expect(Array(back.utf8) == Array(s.utf8), "\(pre) string \(i): \(String(reflecting: s))")
            }
        }
    }

    /// The heap-based merge against a naive one: merge the lowest-ranked adjacent pair, leftmost first.
    @Test(.requires(.smolLM2))
    func mergesMatchNaiveReference() throws {
        let tok = try TokenizerFixtures.smolLM.get()
        let merges = try #require(try GGUFFile(path: TokenizerFixtures.model)["tokenizer.ggml.merges"]?.stringArray)
        var rank: [String: Int] = [:]
        for (r, m) in merges.enumerated() where rank[m] == nil { rank[m] = r }
        func naive(_ piece: String) -> [Int32] {
            var sym = ByteUnicode.encode(Array(piece.utf8)).unicodeScalars.map { String($0) }
            while sym.count > 1 {
                let ranks = (0..<(sym.count - 1)).map { rank[sym[$0] + " " + sym[$0 + 1]] ?? Int.max }
                guard let best = ranks.min(), best < Int.max, let i = ranks.firstIndex(of: best) else { break }
                sym[i] += sym[i + 1]
                sym.remove(at: i + 1)
            }
            return sym.compactMap { tok.id(of: $0) }
        }
        var rng = TokenizerTestRNG(state: 99)
        var checked = 0
        for _ in 0..<200 {
            for piece in preTokens(randomTokenizerText(&rng) { Self.smolLMCanEncode(tok, $0) }, .smollm) {
                #expect(tok.encode(piece) == naive(piece), "\(String(reflecting: piece))")
                checked += 1
            }
        }
        #expect(checked > 1000)
    }

    // MARK: tokenizer.json

    /// Writes a tiny tokenizer.json (byte tokens, five merges, one special token) and its config.
    func writeTinyJSON(mergesAsPairs: Bool, preTokenizer: Any) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[ByteUnicode.encode([UInt8(b)])] = b }
        let merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"]]
        for (i, m) in merges.enumerated() { vocab[m[0] + m[1]] = 256 + i }
        let json: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 261, "content": "<|endoftext|>", "special": true]],
            "pre_tokenizer": preTokenizer,
            "model": ["type": "BPE", "vocab": vocab,
                      "merges": mergesAsPairs ? merges as Any : merges.map { $0.joined(separator: " ") } as Any],
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        let config: [String: Any] = ["bos_token": "<|endoftext|>", "eos_token": ["content": "<|endoftext|>"]]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        return dir.appendingPathComponent("tokenizer.json").path
    }

    static var byteLevel: [String: Any] { ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true] }
    static var smolLMPre: [String: Any] {
        ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
    }

    @Test(arguments: [false, true])
    func tokenizerJSONLoads(mergesAsPairs: Bool) throws {
        let path = try writeTinyJSON(mergesAsPairs: mergesAsPairs, preTokenizer: Self.smolLMPre)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let tok = try BPETokenizer(tokenizerJSONPath: path)
        #expect(tok.vocabSize == 262)
        #expect(tok.bosTokenId == 261 && tok.eosTokenId == 261)
        let hello: Int32 = 259, w: Int32 = 260
        #expect(tok.encode("hello world") == [hello, w, Int32(Character("o").asciiValue ?? 0),
                                              Int32(Character("r").asciiValue ?? 0), Int32(Character("l").asciiValue ?? 0),
                                              Int32(Character("d").asciiValue ?? 0)])
        #expect(tok.encode("12") == [49, 50])
        #expect(tok.encode("hello<|endoftext|>", parseSpecial: true) == [hello, 261])
        let plain = tok.encode("hello<|endoftext|>")
        #expect(!plain.contains(261) && tok.decode(plain) == "hello<|endoftext|>")
        #expect(tok.decode([hello, 261]) == "hello<|endoftext|>")
    }

    // MARK: Errors

    @Test func rejectsBadArguments() throws {
        let bytes = (0..<256).map { ByteUnicode.encode([UInt8($0)]) }
        let unknown = #expect(throws: PruneError.self) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: nil, preTokenizer: "no-such", bosTokenId: nil, eosTokenId: nil)
        }
        #expect(unknown?.code == .unsupported && unknown?.message.contains("'no-such'") == true)
        let types = #expect(throws: PruneError.self) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: [1], preTokenizer: "gpt2", bosTokenId: nil, eosTokenId: nil)
        }
        #expect(types?.code == .badFormat && types?.message.contains("'1' token types for 256 tokens") == true, "\(types?.message ?? "")")
        let merge = #expect(throws: PruneError.self) {
            try BPETokenizer(tokens: bytes, merges: ["ab"], tokenTypes: nil, preTokenizer: "gpt2", bosTokenId: nil, eosTokenId: nil)
        }
        #expect(merge?.code == .badFormat && merge?.message.contains("'ab'") == true)
        let bos = #expect(throws: PruneError.self) {
            try BPETokenizer(tokens: bytes, merges: [], tokenTypes: nil, preTokenizer: "gpt2", bosTokenId: 256, eosTokenId: nil)
        }
        #expect(bos?.code == .outOfRange && bos?.message.contains("BOS token id '256'") == true, "\(bos?.message ?? "")")
        let empty = #expect(throws: PruneError.self) {
            try BPETokenizer(tokens: [], merges: [], tokenTypes: nil, preTokenizer: "gpt2", bosTokenId: nil, eosTokenId: nil)
        }
        #expect(empty?.code == .badFormat && empty?.message.contains("the vocabulary is empty") == true, "\(empty?.message ?? "")")
    }

    @Test func rejectsBadTokenizerJSON() throws {
        let missing = #expect(throws: PruneError.self) { try BPETokenizer(tokenizerJSONPath: "/nonexistent/tokenizer.json") }
        #expect(missing?.code == .fileNotFound && missing?.message.contains("'/nonexistent/tokenizer.json'") == true, "\(missing?.message ?? "")")
        let path = try writeTinyJSON(mergesAsPairs: false, preTokenizer: ["type": "Whitespace"])
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let pre = #expect(throws: PruneError.self) { try BPETokenizer(tokenizerJSONPath: path) }
        #expect(pre?.code == .unsupported && pre?.message.contains("Whitespace") == true)
    }
}
