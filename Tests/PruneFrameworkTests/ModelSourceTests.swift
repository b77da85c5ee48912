import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// A model is a GGUF file or a Hugging Face directory (config.json, *.safetensors, tokenizer.json);
/// both give the same model and tokenizer.
@Suite struct ModelSourceTests {
    func temporaryFolder() -> String { NSTemporaryDirectory() + "prune-source-\(UUID().uuidString)" }

    /// Writes the GGUF's model and tokenizer as a Hugging Face directory and checks that the
    /// directory tokenizes `texts` and computes logits exactly as the GGUF does.
    func directoryMatchesItsGGUF(_ file: RequiredFile, texts: [String]) throws {
        let gguf = try ModelSource(path: file.path)
        let (model, tokenizer) = (try gguf.load(), try gguf.tokenizer())
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.saveSafetensors(directory: dir, dtype: .f32, tokenizer: tokenizer)
        let hf = try ModelSource(path: dir)
        #expect(hf.gguf == nil && hf.stem == (dir as NSString).lastPathComponent)
        let hfTokenizer = try hf.tokenizer()
        #expect(hfTokenizer.bosTokenId == tokenizer.bosTokenId && hfTokenizer.eosTokenId == tokenizer.eosTokenId)
        for text in texts {
            for special in [false, true] {
                #expect(hfTokenizer.encode(text, parseSpecial: special) == tokenizer.encode(text, parseSpecial: special), "\(text.prefix(60))")
            }
        }
        let hfModel = try hf.load()
        #expect(hfModel.config == model.config)
        let ids = tokenizer.encode("The quick brown fox jumps over the lazy dog; 12345 is a number.")
        let n = ids.count
        #expect(try hfModel.logits(tokens: ids, batch: 1, seqLen: n) == (try model.logits(tokens: ids, batch: 1, seqLen: n)))
    }

    func wikiText(_ chars: Int) throws -> String {
        String(try String(contentsOfFile: Repository.data + "/wikitext2/wikitext2_test_hfjoin.txt", encoding: .utf8).prefix(chars))
    }

    @Test(.requires(.qwen25Coder05B)) func aQwenDirectoryBuiltFromTheGGUFIsTheSameModel() throws {
        let chat = "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nsort 3, 1, 2<|im_end|>\n<tool_call>{}</tool_call>"
        try directoryMatchesItsGGUF(.qwen25Coder05B, texts: [try wikiText(50_000), chat, "x12345 v2.0 ½ 日本語 😀 it's"])
    }

    @Test(.requires(.smolLM2)) func aSmolLM2DirectoryBuiltFromTheGGUFIsTheSameModel() throws {
        try directoryMatchesItsGGUF(.smolLM2, texts: [try wikiText(50_000), "<|im_start|>user\nhi<|im_end|>", "12345 don't"])
    }

    @Test(arguments: ["gpt2", "smollm", "llama-bpe", "qwen2"])
    func tokenizerJSONReadsBackAsTheSameTokenizer(pre: String) throws {
        let bytes = (0..<256).map { ByteUnicode.encode([UInt8($0)]) }
        let space = ByteUnicode.encode([0x20])
        let tokens = bytes + [space + "t", space + "th", "<|end|>", "<tool>"]
        let types = [Int](repeating: 1, count: 258) + [3, 4]
        let t = try BPETokenizer(tokens: tokens, merges: ["\(space) t", "\(space)t h"], tokenTypes: types, preTokenizer: pre,
                                 bosTokenId: nil, eosTokenId: 258)
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try t.tokenizerJSON().write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        try t.tokenizerConfigJSON().write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        #expect(try t.tokenizerJSON() == (try t.tokenizerJSON()), "the same tokenizer gives the same bytes")
        let back = try BPETokenizer(tokenizerJSONPath: dir + "/tokenizer.json")
        #expect(back.eosTokenId == 258 && back.bosTokenId == nil && back.vocabSize == 260)
        let text = "the 2024 things<|end|> <tool> they're   here\n\n"
        for special in [false, true] { #expect(back.encode(text, parseSpecial: special) == t.encode(text, parseSpecial: special)) }
    }

    @Test func whatIsMissingIsNamed() throws {
        let missing = try #require(throws: PruneError.self) { try ModelSource(path: "/nonexistent/model") }
        #expect(missing.message.contains("model '/nonexistent/model' does not exist; pass a GGUF file or a Hugging Face model directory"))
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let noConfig = try #require(throws: PruneError.self) { try ModelSource(path: dir) }
        #expect(noConfig.message.contains("no config.json in '\(dir)'"), "\(noConfig.message)")
        let model = try Transformer(randomWith: tinyConfig(), seed: 1)
        try model.saveSafetensors(directory: dir)
        let source = try ModelSource(path: dir)
        let noTokenizer = try #require(throws: PruneError.self) { try source.tokenizer() }
        #expect(noTokenizer.message.contains("no tokenizer.json in '\(dir)'"), "\(noTokenizer.message)")
        #expect(try source.load().config == model.config)
    }
}
