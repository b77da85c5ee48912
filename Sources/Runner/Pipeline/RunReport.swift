import Foundation
import PruneFramework

/// What a run measured; written as report.json and report.md.
public struct RunReport: Codable, Sendable {
    public struct Widths: Codable, Sendable, Equatable { public var nHead: [Int]; public var nKVHead: [Int]; public var ffnDim: [Int]; public var hiddenSize: Int
        enum CodingKeys: String, CodingKey { case nHead = "n_head", nKVHead = "n_kv_head", ffnDim = "ffn_dim", hiddenSize = "hidden_size" }
    }
    public struct Stage: Codable, Sendable { public var name: String; public var seconds: Double }

    public var model: String
    public var recipe: String
    public var paramsBefore: Int
    public var paramsAfter: Int
    /// Embedding parameters (token_embd, and output when untied), before and after.
    public var embeddingParamsBefore: Int
    public var embeddingParamsAfter: Int
    public var removedFraction: Double
    public var removedFractionWithoutEmbeddings: Double
    public var pplBefore: Double?
    public var pplAfter: Double?
    public var evaluationsBefore: [PerplexityResult]
    public var evaluationsAfter: [PerplexityResult]
    public var widthsBefore: Widths
    public var widthsAfter: Widths
    public var calibration: Recipe.Calibration
    public var stages: [Stage]
    public var outputs: [String]
    /// With a fine-tuner: the pruned model's evaluations before it ran, and what it did.
    public var evaluationsBeforeFineTune: [PerplexityResult]? = nil
    public var fineTune: FineTuneReport? = nil
    /// Zero-shot accuracy of the final model on `evaluation.tasks`.
    public var zeroShot: [ZeroShotResult]? = nil
    /// The scheduler's target (fraction of all parameters) and MLP width multiple, when it has them.
    public var targetRatio: Double? = nil
    public var roundTo: Int? = nil
    /// The GGUF output's tensor types and the matrices that fell back to another type.
    public var export: GGUFExportSummary? = nil
    /// How the work was shared when the run had several processes (nil: one process).
    public var distributed: DistributedSummary? = nil

    enum CodingKeys: String, CodingKey {
        case model, recipe, paramsBefore = "params_before", paramsAfter = "params_after"
        case embeddingParamsBefore = "embedding_params_before", embeddingParamsAfter = "embedding_params_after"
        case removedFraction = "removed_fraction", removedFractionWithoutEmbeddings = "removed_fraction_without_embeddings"
        case pplBefore = "ppl_before", pplAfter = "ppl_after", evaluationsBefore = "evaluations_before"
        case evaluationsAfter = "evaluations_after", widthsBefore = "widths_before", widthsAfter = "widths_after"
        case calibration, stages, outputs
        case evaluationsBeforeFineTune = "evaluations_before_fine_tune", fineTune = "fine_tune", zeroShot = "zero_shot"
        case targetRatio = "target_ratio", roundTo = "round_to", export = "gguf_export", distributed
    }

    static func widths(_ c: ModelConfig) -> Widths { Widths(nHead: c.nHead, nKVHead: c.nKVHead, ffnDim: c.ffnDim, hiddenSize: c.hiddenSize) }

    static func embeddingParams(_ c: ModelConfig) -> Int { c.vocabSize * c.hiddenSize * (c.tiedEmbeddings ? 1 : 2) }

    /// The report as Markdown.
    public var markdown: String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "–" }
        var s = "# Pruning report\n\n"
        s += "- model: `\(model)`\n- recipe: `\(recipe)`\n"
        s += "- calibration: \(calibration.samples) × \(calibration.seqLen) tokens from `\(calibration.dataset)`, seed \(calibration.seed)\n\n"
        // A sweep's entries skip the dense evaluation: their "before" column is empty.
        func before(_ i: Int) -> Double? { i < evaluationsBefore.count ? evaluationsBefore[i].ppl : nil }
        if let mid = evaluationsBeforeFineTune {
            s += "| | before | pruned | pruned + fine-tuned |\n|---|---:|---:|---:|\n"
            s += "| parameters | \(paramsBefore) | \(paramsAfter) | \(paramsAfter) |\n"
            s += "| parameters without embeddings | \(paramsBefore - embeddingParamsBefore) | \(paramsAfter - embeddingParamsAfter) | \(paramsAfter - embeddingParamsAfter) |\n"
            for (i, (m, a)) in zip(mid, evaluationsAfter).enumerated() {
                s += "| \(a.dataset) PPL@\(a.seqLen) (\(a.windows) windows, \(a.tokens) tokens) | \(f(before(i))) | \(f(m.ppl)) | \(f(a.ppl)) |\n"
            }
        } else {
            s += "| | before | after |\n|---|---:|---:|\n"
            s += "| parameters | \(paramsBefore) | \(paramsAfter) |\n"
            s += "| parameters without embeddings | \(paramsBefore - embeddingParamsBefore) | \(paramsAfter - embeddingParamsAfter) |\n"
            for (i, a) in evaluationsAfter.enumerated() {
                s += "| \(a.dataset) PPL@\(a.seqLen) (\(a.windows) windows, \(a.tokens) tokens) | \(f(before(i))) | \(f(a.ppl)) |\n"
            }
        }
        if let zs = zeroShot, !zs.isEmpty {
            s += "\n## Zero-shot accuracy of the final model\n\n| task | n | acc | acc_norm |\n|---|---:|---:|---:|\n"
            for r in zs {
                let norm = ZeroShotTask(rawValue: r.task)?.hasAccNorm == true ? String(format: "%.4f ± %.4f", r.accNorm, r.accNormStderr) : "–"
                s += String(format: "| %@ | %d | %.4f ± %.4f | %@ |\n", r.task, r.n, r.acc, r.accStderr, norm)
            }
        }
        if let ft = fineTune, let first = ft.losses.first, let last = ft.losses.last {
            s += String(format: "\nFine-tune: %d steps, %d tokens, %d trainable parameters, %.0f s; training loss %.3f → %.3f (see `finetune.svg`).\n",
                        ft.losses.count, ft.tokens, ft.trainableParameters, ft.seconds, first, last)
        }
        s += "\nRemoved \(String(format: "%.2f%%", removedFraction * 100)) of all parameters, "
        s += "\(String(format: "%.2f%%", removedFractionWithoutEmbeddings * 100)) of the non-embedding parameters"
        if let t = targetRatio { s += String(format: " (target: %.2f%% of all parameters%@)", t * 100, roundTo.map { ", MLP widths in multiples of \($0)" } ?? "") }
        s += ".\n\n"
        s += "## Per-layer widths after pruning\n\n| layer | heads | KV heads | MLP channels |\n|---:|---:|---:|---:|\n"
        for l in widthsAfter.nHead.indices {
            s += "| \(l) | \(widthsAfter.nHead[l]) | \(widthsAfter.nKVHead[l]) | \(widthsAfter.ffnDim[l]) |\n"
        }
        s += "\nHidden size: \(widthsBefore.hiddenSize) → \(widthsAfter.hiddenSize).\n\n## Wall time per stage\n\n| stage | seconds |\n|---|---:|\n"
        for st in stages { s += "| \(st.name) | \(String(format: "%.1f", st.seconds)) |\n" }
        if let export { s += "\n" + export.markdown }
        if let distributed { s += "\n" + distributed.markdown }
        s += "\n## Files\n\n" + outputs.map { "- `\($0)`\n" }.joined()
        return s
    }
}

/// How a run with several processes shared its work: the ranks, what ran the collectives, and
/// which stages each rank ran on its share of the samples (the others ran whole on every rank).
public struct DistributedSummary: Codable, Sendable, Equatable {
    public var ranks: Int
    public var implementation: String
    public var sharedStages: [String]
    public var replicatedStages: [String]
    /// What each shared stage's collectives sent from this rank (rank 0).
    public var traffic: [StageTraffic]

    public struct StageTraffic: Codable, Sendable, Equatable {
        public var stage: String
        public var sent: Distributed.Traffic.Counts
    }

    enum CodingKeys: String, CodingKey {
        case ranks, implementation, sharedStages = "shared_stages", replicatedStages = "replicated_stages", traffic
    }

    var markdown: String {
        var s = "## Distributed run\n\n\(ranks) processes (\(implementation)); rank 0 wrote every file.\n\n"
        s += "- shared out (each rank ran its share of the samples, sums added over the ranks): "
        s += sharedStages.isEmpty ? "none\n" : sharedStages.joined(separator: "; ") + "\n"
        s += "- run whole on every rank: " + (replicatedStages.isEmpty ? "none" : replicatedStages.joined(separator: "; ")) + "\n"
        if !traffic.isEmpty {
            s += "\n| shared stage | all-gathers | bytes sent per rank | largest |\n|---|---:|---:|---:|\n"
            for t in traffic { s += "| \(t.stage) | \(t.sent.calls) | \(t.sent.bytes) | \(t.sent.largest) |\n" }
        }
        return s
    }
}
