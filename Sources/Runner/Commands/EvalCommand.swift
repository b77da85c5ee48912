import Foundation
import PruneFramework

/// `prune eval`: perplexity of a model on a dataset, and/or zero-shot accuracy on `--tasks`.
enum EvalCommand {
    struct Output: Encodable {
        var model: String
        var result: PerplexityResult
        var tokenizeSeconds: Double
        /// "f32" or "llamacpp".
        var numerics: String
        enum CodingKeys: String, CodingKey { case model, tokenizeSeconds = "tokenize_seconds", numerics }
        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(model, forKey: .model)
            try c.encode(tokenizeSeconds, forKey: .tokenizeSeconds)
            try c.encode(numerics, forKey: .numerics)
        }
    }

    static func run(_ args: [String]) throws {
        let a = try Arguments(args, command: "eval",
                              valued: ["model", "dataset", "seq-len", "max-windows", "batch", "data-dir", "tasks", "limit", "scoring",
                                       "numerics"],
                              flags: ["json"])
        let modelPath = try a.required("model")
        let numericsName = a.string("numerics") ?? "f32"
        guard ["f32", "llamacpp"].contains(numericsName) else {
            throw PruneError(.invalidArgument, "prune eval: '--numerics' = '\(numericsName)' is unknown; allowed: f32 (our forward), llamacpp (llama.cpp's CPU arithmetic on Q4_1 weights)")
        }
        if let list = a.string("tasks") {
            guard numericsName == "f32" else {
                throw PruneError(.invalidArgument, "prune eval: '--numerics llamacpp' applies to perplexity ('--dataset') only; zero-shot tasks are scored with the f32 forward")
            }
            let tasks = try ZeroShotTask.parseList(list)
            let limit = try a.int("limit", range: 1...Int.max)
            guard a.string("dataset") == nil else {
                throw PruneError(.invalidArgument, "prune eval: '--tasks' and '--dataset' go in separate runs; give one of them")
            }
            let scoring = a.string("scoring") ?? "auto"
            guard let mode = ZeroShotScorer.Mode(rawValue: scoring) else {
                throw PruneError(.invalidArgument, "prune eval: '--scoring' = '\(scoring)' is unknown; allowed: auto, cached, batched")
            }
            return try runZeroShot(modelPath: modelPath, tasks: tasks, limit: limit, mode: mode, dataDir: a.string("data-dir"),
                                   json: a.flag("json"))
        }
        let datasetName = try a.required("dataset")
        let seqLen = try a.int("seq-len", default: 128, range: 2...1_000_000)!
        let maxWindows = try a.int("max-windows", range: 1...Int.max)
        let batch = try a.int("batch", range: 1...4096)
        let text = try Datasets.resolve(datasetName, dataDir: a.string("data-dir"))
        let source = try ModelSource(path: modelPath)
        let tokenizer = try source.tokenizer()
        let model = try source.load()
        let numerics = try numericsName == "llamacpp" ? LlamaCppNumerics(gguf: llamaCppFile(source)) : nil
        guard seqLen <= model.config.contextLength * 4 else {
            throw PruneError(.outOfRange, "prune eval: '--seq-len' = '\(seqLen)' is far beyond the model's context length \(model.config.contextLength)")
        }
        let t0 = Date()
        let tokens = tokenizer.encode(text.text)
        let tokSecs = Date().timeIntervalSince(t0)
        if !a.flag("json") {
            World.log("tokenized \(text.name) (\(text.split)): \(tokens.count) tokens in \(String(format: "%.2f", tokSecs)) s")
        }
        var bar: ProgressBar?
        let result = try Perplexity.evaluate(model: model, tokens: tokens, seqLen: seqLen, maxWindows: maxWindows,
                                             batchSize: batch, text: text, numerics: numerics, communicator: World.current) { done, total in
            if bar == nil { bar = ProgressBar(total: total, label: "eval \(text.name)", unit: "win") }
            bar?.update(done)
        }
        bar?.finish()
        if a.flag("json") {
            try CLI.printJSON(Output(model: modelPath, result: result, tokenizeSeconds: tokSecs, numerics: numericsName))
        } else {
            print(String(format: "%@ (%@, %@): PPL %.4f, mean NLL %.5f", text.name, text.split, text.joining, result.ppl, result.meanNLL)
                  + (numerics == nil ? "" : " (llama.cpp numerics)"))
            print("  seq_len \(result.seqLen), windows \(result.windows), predicted tokens \(result.tokens)")
            print(String(format: "  %.1f s, %.0f tokens/s", result.seconds, result.tokensPerSecond))
        }
    }

    /// The GGUF whose quantized blocks `--numerics llamacpp` reproduces; a Hugging Face model has none.
    static func llamaCppFile(_ source: ModelSource) throws -> GGUFFile {
        guard let f = source.gguf else {
            throw PruneError(.invalidArgument, "prune eval: '--numerics llamacpp' reproduces llama.cpp's arithmetic on a GGUF's quantized blocks; '\(source.path)' is a Hugging Face model, so use the default numerics")
        }
        return f
    }

    struct ZeroShotOutput: Encodable {
        var model: String
        var limit: Int?
        var tasks: [ZeroShotResult]
    }

    /// `prune eval --tasks a,b [--limit N]`: acc and acc_norm of each task with lm-evaluation-harness conventions.
    static func runZeroShot(modelPath: String, tasks: [ZeroShotTask], limit: Int?, mode: ZeroShotScorer.Mode,
                           dataDir: String?, json: Bool) throws {
        let taskItems = try tasks.map { try ($0, $0.load(dataDir: dataDir, limit: limit)) }
        let source = try ModelSource(path: modelPath)
        let tokenizer = try source.tokenizer()
        let scorer = ZeroShotScorer(model: try source.load(), mode: mode)
        var results: [ZeroShotResult] = []
        for (task, items) in taskItems {
            let bar = ProgressBar(total: items.count, label: "eval \(task.rawValue)", unit: "item")
            let r = try ZeroShotEvaluator.evaluate(task: task, items: items, scorer: scorer, encode: { tokenizer.encode($0) },
                                                   communicator: World.current) { done, _ in bar.update(done) }
            bar.finish()
            results.append(r)
            if !json {
                let norm = task.hasAccNorm ? String(format: ", acc_norm %.4f ± %.4f", r.accNorm, r.accNormStderr) : ""
                print(String(format: "%@: acc %.4f ± %.4f%@ (n %d, %.1f s)", task.rawValue, r.acc, r.accStderr, norm, r.n, r.seconds))
            }
        }
        if json { try CLI.printJSON(ZeroShotOutput(model: modelPath, limit: limit, tasks: results)) }
    }
}
