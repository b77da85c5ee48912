import Foundation
import PruneFramework

/// `prune eval`: perplexity of a model on a dataset with a stated protocol.
enum EvalCommand {
    struct Output: Encodable {
        var model: String
        var result: PerplexityResult
        var tokenizeSeconds: Double
        enum CodingKeys: String, CodingKey { case model, tokenizeSeconds = "tokenize_seconds" }
        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(model, forKey: .model)
            try c.encode(tokenizeSeconds, forKey: .tokenizeSeconds)
        }
    }

    static func run(_ args: [String]) throws {
        let a = try Arguments(args, command: "eval",
                              valued: ["model", "dataset", "seq-len", "max-windows", "batch", "data-dir"], flags: ["json"])
        let modelPath = try a.required("model")
        let datasetName = try a.required("dataset")
        let seqLen = try a.int("seq-len", default: 128, range: 2...1_000_000)!
        let maxWindows = try a.int("max-windows", range: 1...Int.max)
        let batch = try a.int("batch", range: 1...4096)
        let text = try Datasets.resolve(datasetName, dataDir: a.string("data-dir"))
        let file = try GGUFFile(path: modelPath)
        let tokenizer = try BPETokenizer(gguf: file)
        let model = try Transformer(gguf: file)
        guard seqLen <= model.config.contextLength * 4 else {
            throw PruneError(.outOfRange, "prune eval: '--seq-len' = '\(seqLen)' is far beyond the model's context length \(model.config.contextLength)")
        }
        let t0 = Date()
        let tokens = tokenizer.encode(text.text)
        let tokSecs = Date().timeIntervalSince(t0)
        if !a.flag("json") {
            CLI.log("tokenized \(text.name) (\(text.split)): \(tokens.count) tokens in \(String(format: "%.2f", tokSecs)) s")
        }
        var bar: ProgressBar?
        let result = try Perplexity.evaluate(model: model, tokens: tokens, seqLen: seqLen, maxWindows: maxWindows,
                                             batchSize: batch, text: text) { done, total in
            if bar == nil { bar = ProgressBar(total: total, label: "eval \(text.name)", unit: "win") }
            bar?.update(done)
        }
        bar?.finish()
        if a.flag("json") {
            try CLI.printJSON(Output(model: modelPath, result: result, tokenizeSeconds: tokSecs))
        } else {
            print(String(format: "%@ (%@, %@): PPL %.4f, mean NLL %.5f", text.name, text.split, text.joining, result.ppl, result.meanNLL))
            print("  seq_len \(result.seqLen), windows \(result.windows), predicted tokens \(result.tokens)")
            print(String(format: "  %.1f s, %.0f tokens/s", result.seconds, result.tokensPerSecond))
        }
    }
}
