import Foundation

// Zero-shot multiple-choice tasks with lm-evaluation-harness conventions (EleutherAI, v0.4 task YAMLs):
// each choice is a (context, continuation) request; the continuation starts with the task's target
// delimiter (" "); `acc` is the argmax of the summed continuation log-probability, `acc_norm` the
// argmax after dividing by the choice's length in UTF-8 bytes (the harness divides by `len(choice)`,
// which is the same for ASCII text).

/// One multiple-choice item: a (context, continuation) pair per choice and the gold index.
public struct ZeroShotItem: Sendable, Equatable {
    /// The context of each choice (the same string for every choice except in WinoGrande).
    public var contexts: [String]
    /// The continuation of each choice, target delimiter included (e.g. `" yes"`).
    public var continuations: [String]
    /// The choice texts whose UTF-8 byte lengths normalise `acc_norm` (no delimiter).
    public var choices: [String]
    /// Index of the right choice.
    public var gold: Int
}

/// One request: token ids of a context and of the continuation scored after it.
public struct ZeroShotRequest: Sendable, Equatable {
    public var context: [Int32]
    public var continuation: [Int32]
    public init(context: [Int32], continuation: [Int32]) {
        self.context = context
        self.continuation = continuation
    }

    /// Encodes a pair as the harness does: trailing whitespace of the context moves to the continuation,
    /// and the continuation's ids are those of `encode(context + continuation)` after the context's ids.
    public init(context: String, continuation: String, encode: (String) -> [Int32]) {
        var ctx = Substring(context), cont = continuation
        var n = ctx.endIndex
        while n > ctx.startIndex, ctx[ctx.index(before: n)].isWhitespace { n = ctx.index(before: n) }
        if n < ctx.endIndex {
            cont = String(ctx[n...]) + cont
            ctx = ctx[..<n]
        }
        let whole = encode(String(ctx) + cont)
        let ctxIds = encode(String(ctx))
        self.init(context: ctxIds, continuation: Array(whole.dropFirst(min(ctxIds.count, whole.count))))
    }
}

/// The seven zero-shot tasks of the pruning papers, with the harness's prompt templates.
public enum ZeroShotTask: String, CaseIterable, Sendable, Codable {
    case boolq, piqa, hellaswag, winogrande
    case arcEasy = "arc_easy", arcChallenge = "arc_challenge", openbookqa

    /// Names accepted by `--tasks`, in the order the papers report them.
    public static var names: [String] { allCases.map(\.rawValue) }

    /// Parses a comma-separated task list; an unknown name is an error naming it and the allowed ones.
    public static func parseList(_ list: String) throws -> [ZeroShotTask] {
        let parts = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else {
            throw PruneError(.invalidArgument, "zero-shot: '--tasks' = '\(list)' names no task; allowed: \(names.joined(separator: ", "))")
        }
        return try parts.map { p in
            guard let t = ZeroShotTask(rawValue: p.lowercased()) else {
                throw PruneError(.unknownName, "zero-shot: unknown task '\(p)' in '--tasks'; allowed: \(names.joined(separator: ", "))")
            }
            return t
        }
    }

    /// The names of the task's data files in `zeroshot/` of the data folder.
    public var files: [String] {
        switch self {
        case .boolq: ["boolq_validation_llmfoundry.jsonl"]
        case .piqa: ["piqa_valid.jsonl", "piqa_valid-labels.lst"]
        case .hellaswag: ["hellaswag_val_full.txt"]
        case .winogrande: ["winogrande_xl_validation_llmfoundry.jsonl"]
        case .arcEasy: ["arc_easy_test.jsonl"]
        case .arcChallenge: ["arc_challenge_test.jsonl"]
        case .openbookqa: ["openbookqa_main_test.jsonl"]
        }
    }

    /// Whether the harness reports `acc_norm` for this task (BoolQ and WinoGrande report `acc` only).
    public var hasAccNorm: Bool { self != .boolq && self != .winogrande }

    /// The paths of the task's data files, found under `zeroshot/` of the data folder (`DataLocation`).
    public func dataFiles(dataDir: String? = nil) throws -> [String] {
        let data = DataLocation(override: dataDir)
        return try files.map { try data.file("zeroshot/" + $0, what: "zero-shot task '\(rawValue)'") }
    }

    /// Loads the first `limit` items (all when nil) from `zeroshot/` of the data folder.
    public func load(dataDir: String? = nil, limit: Int? = nil) throws -> [ZeroShotItem] {
        let paths = try dataFiles(dataDir: dataDir)
        let text = try Datasets.readText(paths[0], hint: "the zero-shot data of '\(rawValue)'")
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        if self == .hellaswag { return try ZeroShotTask.hellaswagItems(lines, path: paths[0], limit: limit) }
        var labels: [String] = []
        if paths.count > 1 {
            labels = try Datasets.readText(paths[1], hint: "the labels of '\(rawValue)'")
                .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let n = min(lines.count, limit ?? Int.max)
        return try (0..<n).map { i in
            let line = lines[i]
            do {
                return try item(json: Data(line.utf8), label: i < labels.count ? labels[i] : nil)
            } catch let e as PruneError {
                throw PruneError(e.code, "\(paths[0]):\(i + 1): \(e.message)")
            } catch {
                throw PruneError(.badFormat, "\(paths[0]):\(i + 1): not a \(rawValue) JSON record (\(error.localizedDescription))")
            }
        }
    }

    /// One item from one JSON line (and, for PIQA, its label line).
    public func item(json: Data, label: String? = nil) throws -> ZeroShotItem {
        let dec = JSONDecoder()
        switch self {
        case .boolq:
            let r = try dec.decode(LLMFoundryMC.self, from: json)
            return try ZeroShotTask.boolq(query: r.query, gold: r.gold)
        case .piqa:
            let r = try dec.decode(PIQARecord.self, from: json)
            guard let label, let g = Int(label), (0...1).contains(g) else {
                throw PruneError(.badFormat, "piqa: label '\(label ?? "")' is not 0 or 1")
            }
            return ZeroShotTask.shared(context: "Question: \(r.goal)\nAnswer:", choices: [r.sol1, r.sol2], gold: g)
        case .winogrande:
            let r = try dec.decode(WinoGrandeRecord.self, from: json)
            return try ZeroShotTask.winogrande(options: r.context_options, continuation: r.continuation, gold: r.gold)
        case .arcEasy, .arcChallenge, .openbookqa:
            let r = try dec.decode(ARCRecord.self, from: json)
            guard let q = r.question ?? r.question_stem else { throw PruneError(.badFormat, "\(rawValue): no 'question'") }
            guard let g = r.choices.label.firstIndex(of: r.answerKey), r.choices.text.count == r.choices.label.count else {
                throw PruneError(.badFormat, "\(rawValue): answerKey '\(r.answerKey)' is not one of the labels \(r.choices.label)")
            }
            let ctx = self == .openbookqa ? q : "Question: \(q)\nAnswer:"
            return ZeroShotTask.shared(context: ctx, choices: r.choices.text, gold: g)
        case .hellaswag:
            throw PruneError(.unsupported, "hellaswag: items come in 6-line blocks, not JSON")
        }
    }

    /// An item whose choices share one context, each continuation being `" " + choice`.
    static func shared(context: String, choices: [String], gold: Int) -> ZeroShotItem {
        ZeroShotItem(contexts: Array(repeating: context, count: choices.count),
                     continuations: choices.map { " " + $0 }, choices: choices, gold: gold)
    }

    /// BoolQ from llm-foundry's `"Passage: P\nQuestion: Q?"`: the harness's `"P\nQuestion: Q?\nAnswer:"`, choices no/yes.
    static func boolq(query: String, gold: Int) throws -> ZeroShotItem {
        guard (0...1).contains(gold) else { throw PruneError(.badFormat, "boolq: gold '\(gold)' is not 0 or 1") }
        let prefix = "Passage: "
        let body = query.hasPrefix(prefix) ? String(query.dropFirst(prefix.count)) : query
        return shared(context: body + "\nAnswer:", choices: ["no", "yes"], gold: gold)
    }

    /// WinoGrande partial scoring: the contexts differ (sentence up to the blank, option filled in) and
    /// the continuation is the rest of the sentence, scored after the target delimiter " ".
    static func winogrande(options: [String], continuation: String, gold: Int) throws -> ZeroShotItem {
        guard options.count == 2, (0...1).contains(gold) else {
            throw PruneError(.badFormat, "winogrande: needs 2 context options and gold 0 or 1, got \(options.count) and '\(gold)'")
        }
        let rest = continuation.trimmingCharacters(in: .whitespaces)
        return ZeroShotItem(contexts: options, continuations: [" " + rest, " " + rest], choices: [rest, rest], gold: gold)
    }

    /// HellaSwag from llama.cpp's format (context, gold index, 4 endings per item), with the harness's
    /// `preprocess` applied to the context and to each ending.
    static func hellaswagItems(_ lines: [String], path: String, limit: Int?) throws -> [ZeroShotItem] {
        guard lines.count % 6 == 0 else {
            throw PruneError(.badFormat, "\(path): \(lines.count) lines are not blocks of 6 (context, gold, 4 endings)")
        }
        let n = min(lines.count / 6, limit ?? Int.max)
        return try (0..<n).map { i in
            let b = i * 6
            guard let g = Int(lines[b + 1].trimmingCharacters(in: .whitespaces)), (0..<4).contains(g) else {
                throw PruneError(.badFormat, "\(path):\(b + 2): gold index '\(lines[b + 1])' is not 0...3")
            }
            return shared(context: hellaswagPreprocess(lines[b]), choices: (2..<6).map { hellaswagPreprocess(lines[b + $0]) }, gold: g)
        }
    }

    /// The harness's HellaSwag `preprocess`: strip, " [title]" → ". ", drop `[...]`, "  " → " ".
    public static func hellaswagPreprocess(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " [title]", with: ". ")
        t = t.replacingOccurrences(of: "\\[.*?\\]", with: "", options: .regularExpression)
        return t.replacingOccurrences(of: "  ", with: " ")
    }
}

private struct LLMFoundryMC: Decodable { var query: String; var choices: [String]; var gold: Int }
private struct PIQARecord: Decodable { var goal: String; var sol1: String; var sol2: String }
private struct WinoGrandeRecord: Decodable { var context_options: [String]; var continuation: String; var gold: Int }
private struct ARCRecord: Decodable {
    struct Choices: Decodable { var text: [String]; var label: [String] }
    var question: String?
    var question_stem: String?
    var choices: Choices
    var answerKey: String
}

/// Accuracy of one task: `acc` and `acc_norm` with the harness's standard errors.
public struct ZeroShotResult: Codable, Sendable, Equatable {
    public var task: String
    public var n: Int
    public var acc: Double
    public var accStderr: Double
    public var accNorm: Double
    public var accNormStderr: Double
    public var seconds: Double
    enum CodingKeys: String, CodingKey {
        case task, n, acc, seconds
        case accStderr = "acc_stderr", accNorm = "acc_norm", accNormStderr = "acc_norm_stderr"
    }
}

/// The metrics of multiple-choice scoring.
public enum ZeroShotMetrics {
    /// Index of the largest value, the first on ties (numpy's argmax).
    public static func argmax(_ xs: [Double]) -> Int {
        var best = 0
        for i in xs.indices where xs[i] > xs[best] { best = i }
        return best
    }

    /// Whether `acc` and `acc_norm` pick the gold choice, from the summed log-probabilities of each choice.
    public static func correct(logprobs: [Double], item: ZeroShotItem) -> (acc: Bool, accNorm: Bool) {
        let norm = zip(logprobs, item.choices).map { $0 / Double(max(1, $1.utf8.count)) }
        return (argmax(logprobs) == item.gold, argmax(norm) == item.gold)
    }

    /// Mean and the harness's standard error of a mean of 0/1 values: sqrt(p(1−p)/(n−1)).
    public static func meanAndStderr(_ hits: [Bool]) -> (mean: Double, stderr: Double) {
        let n = Double(hits.count)
        guard n > 0 else { return (.nan, .nan) }
        let p = Double(hits.filter { $0 }.count) / n
        return (p, n > 1 ? (p * (1 - p) / (n - 1)).squareRoot() : .nan)
    }
}

/// Runs a task: tokenizes each item's requests, scores them, and aggregates the metrics.
public enum ZeroShotEvaluator {
    /// Evaluates `items` of `task`; `progress(done, total)` is called after each of this rank's items.
    /// With several ranks, each scores its share of the items and the hits are gathered in item order.
    public static func evaluate(task: ZeroShotTask, items: [ZeroShotItem], scorer: ZeroShotScorer,
                                encode: (String) -> [Int32], communicator: any Communicator = SingleProcess(),
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> ZeroShotResult {
        let t0 = Date()
        let mine = communicator.share(of: items.count)
        var hits: [Double] = []
        for (i, item) in items[mine].enumerated() {
            let reqs = zip(item.contexts, item.continuations).map { ZeroShotRequest(context: $0, continuation: $1, encode: encode) }
            let lp = try scorer.logLikelihoods(reqs)
            let c = ZeroShotMetrics.correct(logprobs: lp, item: item)
            hits += [c.acc ? 1 : 0, c.accNorm ? 1 : 0]
            progress(i + 1, mine.count)
        }
        let all = Array(try communicator.allGather(doubles: hits).joined())
        let acc = stride(from: 0, to: all.count, by: 2).map { all[$0] == 1 }
        let accNorm = stride(from: 1, to: all.count, by: 2).map { all[$0] == 1 }
        let a = ZeroShotMetrics.meanAndStderr(acc), an = ZeroShotMetrics.meanAndStderr(accNorm)
        return ZeroShotResult(task: task.rawValue, n: items.count, acc: a.mean, accStderr: a.stderr,
                              accNorm: an.mean, accNormStderr: an.stderr, seconds: Date().timeIntervalSince(t0))
    }
}
