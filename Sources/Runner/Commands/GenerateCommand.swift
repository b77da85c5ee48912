import Foundation
import PruneFramework

/// `prune generate`: streams a continuation of a prompt, decoding with a KV cache.
enum GenerateCommand {
    static func run(_ args: [String]) throws {
        let a = try Arguments(args, command: "generate",
                              valued: ["model", "prompt", "max-tokens", "temperature", "top-p", "seed"], flags: ["chat"])
        let path = try a.required("model"), prompt = try a.required("prompt")
        let maxTokens = try a.int("max-tokens", default: 64, range: 1...100_000)!
        let temperature = try a.double("temperature", default: 0.7, range: 0...100)
        let topP = try a.double("top-p", default: 0.9, range: 0.000001...1)
        let seed = try a.int("seed", default: 0)!
        let source = try ModelSource(path: path)
        let tokenizer = try source.tokenizer()
        let model = try source.load()
        // Each token reads every weight once: straight from the rows the file stores (quantized,
        // f16) where it can. Weights stored otherwise (f32, bf16) stay packed, up to half the
        // machine's memory, rather than be packed again per token.
        model.quantizedMatmul = true
        if model.params.storedRows(TensorNames.attnQ(0)) == nil {
            model.packedBudget = max(model.packedBudget, MemoryBudget.physicalBytes / 2)
        }
        let text = a.flag("chat") ? "<|im_start|>user\n\(prompt)<|im_end|>\n<|im_start|>assistant\n" : prompt
        var ids = tokenizer.encode(text, parseSpecial: a.flag("chat"))
        if ids.isEmpty, let bos = tokenizer.bosTokenId { ids = [Int32(bos)] }
        guard !ids.isEmpty else { throw PruneError(.invalidArgument, "prune generate: the prompt is empty") }
        let cache = KVCache(config: model.config, capacity: ids.count + maxTokens)
        var sampler = Sampler(temperature: Float(temperature), topP: Float(topP), seed: UInt64(seed))
        let stops: Set<Int32> = Set([tokenizer.eosTokenId, tokenizer.id(of: "<|im_end|>").map(Int.init)].compactMap { $0 }.map { Int32($0) })
        let t0 = Date()
        var logits = try model.decode(tokens: ids, cache: cache)
        let promptSecs = Date().timeIntervalSince(t0)
        var pending: [UInt8] = []
        var generated = 0
        let t1 = Date()
        if !a.flag("chat") { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        while generated < maxTokens {
            let next = sampler.sample(logits)
            if stops.contains(next) { break }
            generated += 1
            pending += tokenizer.tokenBytes(next)
            // Print the longest prefix that is complete UTF-8; keep a split character for later.
            let cut = completeUTF8Prefix(pending)
            if cut > 0 {
                FileHandle.standardOutput.write(Data(pending[..<cut]))
                pending.removeFirst(cut)
            }
            if generated == maxTokens { break }
            logits = try model.decode(tokens: [next], cache: cache)
        }
        if !pending.isEmpty { FileHandle.standardOutput.write(Data(String(decoding: pending, as: UTF8.self).utf8)) }
        print("")
        let secs = Date().timeIntervalSince(t1)
        CLI.log(String(format: "[prompt %d tokens in %.2f s; generated %d tokens at %.1f tokens/s]", ids.count, promptSecs,
                       generated, Double(generated) / max(secs, 1e-9)))
    }

    /// Length of the longest prefix of `b` that does not end inside a UTF-8 sequence.
    static func completeUTF8Prefix(_ b: [UInt8]) -> Int {
        var i = b.count - 1, back = 0
        while i >= 0 && back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
                return back + 1 >= need ? b.count : i
            }
            i -= 1
            back += 1
        }
        return b.count
    }
}
