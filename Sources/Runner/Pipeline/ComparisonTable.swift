import Foundation
import PruneFramework

/// A comparison's rows laid out like LLM-Pruner's Table 1 (ratio, method, perplexities, the
/// zero-shot accuracies, their average), as Markdown and CSV, with perplexity and accuracy plots.
struct ComparisonTable {
    var results: [SweepResult]
    var title: String
    var recipePath: String
    var evaluation: Recipe.Evaluation
    var totalSeconds: Double
    /// Entries of the sweep not measured yet (a run cut short, or `--from-cache`).
    var pending: [String] = []
    /// Entries whose target the method cannot meet ("label: reason"); the others still ran.
    var failed: [String] = []
    var notes: String?

    /// The metric each task contributes to the table: LLM-Pruner reports acc_norm where the harness
    /// has it for HellaSwag, ARC-Challenge and OpenBookQA, and acc elsewhere.
    static func metric(_ task: String) -> String {
        ["hellaswag", "arc_challenge", "openbookqa"].contains(task) ? "acc_norm" : "acc"
    }

    static func taskLabel(_ t: String) -> String {
        ["boolq": "BoolQ", "piqa": "PIQA", "hellaswag": "HellaSwag", "winogrande": "WinoGrande",
         "arc_easy": "ARC-e", "arc_challenge": "ARC-c", "openbookqa": "OBQA"][t] ?? t
    }

    static func datasetLabel(_ d: String) -> String {
        ["wikitext2": "WikiText-2", "ptb": "PTB", "ptb-sparsegpt": "PTB (test)"][d] ?? (d as NSString).lastPathComponent
    }

    static func score(_ r: ZeroShotResult) -> Double { metric(r.task) == "acc_norm" ? r.accNorm : r.acc }

    var datasets: [String] { evaluation.datasets }
    var tasks: [String] { evaluation.tasks }

    /// Perplexity on `evaluation.datasets[i]` (results come in the recipe's dataset order).
    func ppl(_ r: SweepResult, _ i: Int) -> Double? { i < r.perplexity.count ? r.perplexity[i].ppl : nil }

    func accuracy(_ r: SweepResult, _ t: String) -> Double? { r.zeroShot.first { $0.task == t }.map(Self.score) }

    /// Mean of the task scores; nil unless every task was measured.
    func average(_ r: SweepResult) -> Double? {
        let xs = tasks.compactMap { accuracy(r, $0) }
        return xs.isEmpty || xs.count != tasks.count ? nil : xs.reduce(0, +) / Double(xs.count)
    }

    /// Rows in table order: dense, then per ratio (ascending) the plain entries, then the fine-tuned ones.
    var ordered: [SweepResult] {
        let ratios = Set(results.filter { !$0.dense }.map(\.ratio)).sorted()
        return results.filter(\.dense) + ratios.flatMap { q in
            results.filter { !$0.dense && $0.ratio == q && !$0.fineTune } + results.filter { !$0.dense && $0.ratio == q && $0.fineTune }
        }
    }

    static func f(_ x: Double?, _ digits: Int = 2) -> String { x.map { String(format: "%.\(digits)f", $0) } ?? "–" }
    static func pct(_ x: Double?) -> String { x.map { String(format: "%.2f", $0 * 100) } ?? "–" }

    static func duration(_ s: Double) -> String {
        s < 120 ? String(format: "%.0f s", s) : String(format: "%d min %02d s", Int(s) / 60, Int(s) % 60)
    }

    var markdown: String {
        var s = "# \(title)\n\n"
        s += "Made by `prune run \(recipePath)`"
        if let h = results.first?.modelSHA256 { s += " on the model with sha256 `\(h.prefix(16))…`" }
        s += ". Rows come from the cache when their entry was measured before; each row's wall time is from when it was measured"
        s += " (together \(Self.duration(results.map(\.seconds).reduce(0, +))); this invocation: \(Self.duration(totalSeconds))).\n\n"
        let windows = evaluation.maxWindows.map { "the first \($0) windows" } ?? "every window"
        s += "Perplexity at seqLen \(evaluation.seqLen) over \(windows) of each test set"
        if !tasks.isEmpty {
            s += "; zero-shot accuracy (%) with lm-evaluation-harness conventions on "
            s += evaluation.taskLimit.map { "the first \($0) items of each task" } ?? "every item of each task"
            s += "; acc_norm for HellaSwag, ARC-c and OBQA, acc elsewhere (as LLM-Pruner's Table 1)"
        }
        s += ". Removed = fraction of all parameters (embeddings included) removed.\n\n"
        if let n = notes, !n.isEmpty { s += n + "\n\n" }
        let header = ["Ratio", "Method", "Params", "Removed"] + datasets.map { "\(Self.datasetLabel($0))↓" }
            + tasks.map(Self.taskLabel) + (tasks.isEmpty ? [] : ["Average"]) + ["Prune", "Fine-tune", "Total"]
        s += "| " + header.joined(separator: " | ") + " |\n"
        s += "|" + header.enumerated().map { $0.offset < 2 ? "---" : "---:" }.joined(separator: "|") + "|\n"
        var lastRatio: Double?
        for r in ordered {
            let ratioCell = r.ratio == lastRatio ? "" : (r.dense ? "0%" : String(format: "%g%%", r.ratio * 100))
            lastRatio = r.ratio
            var cells = [ratioCell, r.dense ? "w/o pruning" : r.name, r.parameters.formatted(), Self.pct(r.removedFraction) + "%"]
            cells += datasets.indices.map { Self.f(ppl(r, $0)) }
            cells += tasks.map { Self.pct(accuracy(r, $0)) }
            if !tasks.isEmpty { cells.append(Self.pct(average(r))) }
            cells += [r.dense ? "" : Self.duration(r.pruneSeconds), r.fineTuneSeconds.map(Self.duration) ?? "", Self.duration(r.seconds)]
            s += "| " + cells.joined(separator: " | ") + " |\n"
        }
        s += "\nPrune = calibration, scoring, planning, surgery and export; Total adds fine-tuning and evaluation.\n"
        if !pending.isEmpty {
            s += "\n**Not measured yet** (\(pending.count) entries of the sweep; running the same command computes them): "
            s += pending.joined(separator: "; ") + ".\n"
        }
        if !failed.isEmpty {
            s += "\n**Could not run** (the method cannot meet the entry's target in this setting; nothing is cached):\n\n"
            s += failed.map { "- \($0)\n" }.joined()
        }
        let spread = sensitivity
        if !spread.isEmpty { s += "\n## How much the choice of method matters\n\n" + spread }
        return s
    }

    /// Per ratio (and fine-tune state) with at least two methods: the spread of each perplexity and
    /// of the average accuracy across methods.
    var sensitivity: String {
        var s = ""
        let body = ordered.filter { !$0.dense }
        var groups: [(Double, Bool)] = []
        for r in body where !groups.contains(where: { $0 == (r.ratio, r.fineTune) }) { groups.append((r.ratio, r.fineTune)) }
        var rows: [String] = []
        for (q, ft) in groups {
            let g = body.filter { $0.ratio == q && $0.fineTune == ft }
            guard g.count >= 2 else { continue }
            let label = String(format: "%g%%", q * 100) + (ft ? " + fine-tune" : "")
            for (i, d) in datasets.enumerated() {
                let xs = g.compactMap { r in ppl(r, i).map { (r.name, $0) } }.sorted { $0.1 < $1.1 }
                guard let lo = xs.first, let hi = xs.last else { continue }
                let med = xs[xs.count / 2].1
                rows.append("| \(label) | \(Self.datasetLabel(d)) PPL | \(xs.count) | \(Self.f(lo.1)) (\(lo.0)) | \(Self.f(med)) | \(Self.f(hi.1)) (\(hi.0)) | ×\(Self.f(hi.1 / lo.1)) |")
            }
            if !tasks.isEmpty {
                let xs = g.compactMap { r in average(r).map { (r.name, $0) } }.sorted { $0.1 < $1.1 }
                if let worst = xs.first, let best = xs.last {
                    rows.append("| \(label) | average accuracy | \(xs.count) | \(Self.pct(best.1)) (\(best.0)) | \(Self.pct(xs[xs.count / 2].1)) | \(Self.pct(worst.1)) (\(worst.0)) | \(String(format: "%.2f", (best.1 - worst.1) * 100)) points |")
                }
            }
        }
        guard !rows.isEmpty else { return s }
        s += "Across methods at the same ratio: worst, median and best, and the spread (worst/best for perplexity, best − worst for accuracy).\n\n"
        s += "| ratio | measure | methods | best | median | worst | spread |\n|---|---|---:|---:|---:|---:|---:|\n"
        return s + rows.joined(separator: "\n") + "\n"
    }

    var csv: String {
        func q(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        var head = ["ratio", "method", "fine_tune", "parameters", "removed_fraction"] + datasets.map { "ppl_\($0)" }
        for t in tasks { head += ["\(t)_acc", "\(t)_acc_norm", "\(t)_n"] }
        head += ["average", "prune_seconds", "fine_tune_seconds", "total_seconds", "cache_key"]
        var lines = [head.joined(separator: ",")]
        func num(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "" }
        for r in ordered {
            var c = [num(r.ratio), q(r.dense ? "dense" : r.name), r.fineTune ? "true" : "false", String(r.parameters), num(r.removedFraction)]
            c += datasets.indices.map { num(ppl(r, $0)) }
            for t in tasks {
                let z = r.zeroShot.first { $0.task == t }
                c += [num(z?.acc), num(z.flatMap { ZeroShotTask(rawValue: $0.task)?.hasAccNorm == true ? $0.accNorm : nil }), z.map { String($0.n) } ?? ""]
            }
            c += [num(average(r)), num(r.pruneSeconds), num(r.fineTuneSeconds), num(r.seconds), r.key]
            lines.append(c.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per method (and fine-tune state) from the dense point through its ratios.
    func chart(title: String, yLabel: String, logY: Bool, value: (SweepResult) -> Double?) -> String {
        let dense = results.first(where: \.dense)
        var keys: [(String, Bool)] = []
        for r in ordered where !r.dense && !keys.contains(where: { $0 == (r.method, r.fineTune) }) { keys.append((r.method, r.fineTune)) }
        let series = keys.map { m, ft -> ChartSeries in
            let rows = ordered.filter { !$0.dense && $0.method == m && $0.fineTune == ft }.sorted { $0.removedFraction < $1.removedFraction }
            var pts = rows.compactMap { r in value(r).map { (x: r.removedFraction * 100, y: $0) } }
            if let d = dense, let v = value(d) { pts.insert((x: 0, y: v), at: 0) }
            return ChartSeries(name: ft ? rows.first?.name ?? m : m, points: pts)
        }
        return SVGChart.lines(title: title, series: series, xLabel: "parameters removed (%)", yLabel: yLabel, logY: logY)
    }

    var pplChart: String {
        guard let d = datasets.first else { return SVGChart.lines(title: "no perplexity dataset", series: [], xLabel: "", yLabel: "") }
        return chart(title: "\(Self.datasetLabel(d)) PPL@\(evaluation.seqLen) against parameters removed", yLabel: "perplexity (log scale)",
                     logY: true) { ppl($0, 0) }
    }

    var accuracyChart: String {
        chart(title: tasks.isEmpty ? "no zero-shot tasks in the recipe's evaluation" : "Average zero-shot accuracy over \(tasks.count) tasks against parameters removed",
              yLabel: "average accuracy (%)", logY: false) { average($0).map { $0 * 100 } }
    }
}
