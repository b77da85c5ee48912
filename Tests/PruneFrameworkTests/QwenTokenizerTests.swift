import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// The Qwen2.5 tokenizer read from Qwen2.5-Coder-0.5B-Instruct's GGUF, against llama.cpp's ids
/// (fixtures made by `scripts/reference/llamacpp_reference.py qwen2.5-0.5b`).
@Suite struct QwenTokenizerTests {
    static let referenceIds = Repository.llamaCppFixtures + "/qwen2.5-0.5b_wikitext2_test_tokens.i32"
    static let specialTokenCases = Repository.llamaCppFixtures + "/qwen2.5-0.5b_special_tokens.json"

    /// The GGUF file, opened once (or the error that opening threw).
    static let file = Result { try GGUFFile(path: RequiredFile.qwen25Coder05B.path) }
    /// Its tokenizer, loaded once.
    static let tokenizer = Result { try BPETokenizer(gguf: try file.get()) }

    /// `qwen2.5-0.5b_special_tokens.json`: prompts and llama.cpp's ids with and without special-token parsing.
    struct SpecialTokenFixture: Decodable {
        struct Case: Decodable {
            let name: String
            let text: String
            let idsSpecialTrue: [Int32]
            let idsSpecialFalse: [Int32]

            enum CodingKeys: String, CodingKey {
                case name, text
                case idsSpecialTrue = "ids_special_true"
                case idsSpecialFalse = "ids_special_false"
            }
        }
        let preTokenizer: String
        let addBosToken: Bool
        let bosTokenId: Int
        let eosTokenId: Int
        let cases: [Case]

        enum CodingKeys: String, CodingKey {
            case preTokenizer = "pre_tokenizer"
            case addBosToken = "add_bos_token"
            case bosTokenId = "bos_token_id"
            case eosTokenId = "eos_token_id"
            case cases
        }

        static func load() throws -> SpecialTokenFixture {
            let data = try Data(contentsOf: URL(fileURLWithPath: QwenTokenizerTests.specialTokenCases))
            return try JSONDecoder().decode(SpecialTokenFixture.self, from: data)
        }
    }

    /// Where two id sequences first differ, with the ids and text around it, or nil when they are equal.
    static func firstDifference(_ got: [Int32], _ want: [Int32], _ tok: BPETokenizer) -> String? {
        let common = min(got.count, want.count)
        guard let i = (0..<common).first(where: { got[$0] != want[$0] }) ?? (got.count == want.count ? nil : common) else {
            return nil
        }
        let lo = max(0, i - 8)
        let ours = Array(got[lo..<min(got.count, i + 8)]), theirs = Array(want[lo..<min(want.count, i + 8)])
        return """
            first difference at token \(i) of \(want.count) (got \(got.count) tokens): ours \(ours), llama.cpp \(theirs), \
            around text \(String(reflecting: tok.decode(theirs)))
            """
    }

    /// As llama.cpp: user-defined tokens (GGUF type 4, Qwen2.5's `<tool_call>`) are matched with and
    /// without `parseSpecial`, control tokens (type 3) only with it.
    @Test func userDefinedTokensMatchWithoutParseSpecial() throws {
        let tokens = (0..<256).map { ByteUnicode.encode([UInt8($0)]) } + ["<tool_call>", "<|im_end|>"]
        let tok = try BPETokenizer(tokens: tokens, merges: [], tokenTypes: [Int](repeating: 1, count: 256) + [4, 3],
                                   preTokenizer: "qwen2", bosTokenId: nil, eosTokenId: 257)
        let text = "a<tool_call>b<|im_end|>"
        let bytes: (String) -> [Int32] = { s in s.utf8.map { Int32($0) } }
        #expect(tok.encode(text, parseSpecial: true) == bytes("a") + [256] + bytes("b") + [257])
        #expect(tok.encode(text, parseSpecial: false) == bytes("a") + [256] + bytes("b<|im_end|>"))
        #expect(tok.decode(tok.encode(text)) == text)
    }

    @Test(.requires(.qwen25Coder05B))
    func encodesWikitextLikeLlamaCpp() throws {
        let tok = try Self.tokenizer.get()
        let text = try String(contentsOfFile: TokenizerFixtures.text, encoding: .utf8)
        let want = try TokenizerFixtures.readInt32s(Self.referenceIds)
        #expect(want.count == 299_078)
        let clock = ContinuousClock()
        var got: [Int32] = []
        let elapsed = clock.measure { got = tok.encode(text) }
        print("Qwen2.5: encoded \(text.utf8.count) bytes into \(got.count) tokens in \(elapsed) (cold cache)")
        if let difference = Self.firstDifference(got, want, tok) { Issue.record("\(difference)") }
        #expect(tok.decode(got) == text)
    }

    @Test(.requires(.qwen25Coder05B))
    func specialTokensLikeLlamaCpp() throws {
        let tok = try Self.tokenizer.get()
        let fixture = try SpecialTokenFixture.load()
        #expect(fixture.cases.count >= 10)
        for c in fixture.cases {
            for (parseSpecial, want) in [(true, c.idsSpecialTrue), (false, c.idsSpecialFalse)] {
                let got = tok.encode(c.text, parseSpecial: parseSpecial)
                if let difference = Self.firstDifference(got, want, tok) {
                    Issue.record("case '\(c.name)', parseSpecial \(parseSpecial): \(difference)")
                }
                #expect(tok.decode(got) == c.text, "case '\(c.name)', parseSpecial \(parseSpecial)")
            }
        }
    }

    @Test(.requires(.qwen25Coder05B))
    func vocabularyAndSpecialIds() throws {
        let tok = try Self.tokenizer.get()
        let file = try Self.file.get()
        let fixture = try SpecialTokenFixture.load()
        #expect(tok.vocabSize == 151_936)
        #expect(tok.bosTokenId == 151_643 && tok.bosTokenId == fixture.bosTokenId)
        #expect(tok.eosTokenId == 151_645 && tok.eosTokenId == fixture.eosTokenId)
        #expect(tok.id(of: "<|endoftext|>") == 151_643 && tok.id(of: "<|im_start|>") == 151_644)
        #expect(tok.id(of: "<|im_end|>") == 151_645 && tok.id(of: "<tool_call>") == 151_657)
        // The tokenizer never adds BOS; the file says Qwen2.5 should not have one either.
        #expect(file["tokenizer.ggml.add_bos_token"]?.bool == false && fixture.addBosToken == false)
        #expect(file["tokenizer.ggml.model"]?.string == "gpt2")
        #expect(file["tokenizer.ggml.pre"]?.string == "qwen2" && fixture.preTokenizer == "qwen2")
        #expect(file["general.architecture"]?.string == "qwen2")
    }

    @Test(.requires(.qwen25Coder05B))
    func roundTripsRandomText() throws {
        let tok = try Self.tokenizer.get()
        // Qwen2.5's vocabulary has all 256 byte tokens, so any text encodes.
        #expect((0..<256).allSatisfy { tok.id(of: ByteUnicode.encode([UInt8($0)])) != nil })
        var rng = TokenizerTestRNG(state: 2025)
        for i in 0..<300 {
            let s = randomTokenizerText(&rng)
            for parseSpecial in [false, true] {
                let ids = tok.encode(s, parseSpecial: parseSpecial)
                #expect(Array(tok.decode(ids).utf8) == Array(s.utf8), "string \(i), parseSpecial \(parseSpecial): \(String(reflecting: s))")
                #expect(ids.flatMap { tok.tokenBytes($0) } == Array(s.utf8), "string \(i) streamed")
            }
        }
    }
}
