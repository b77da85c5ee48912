import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// A sweep run end to end on a tiny model: the table, CSV, JSON and plots, and the cache.
@Suite struct ComparisonTests {
    func sweepRecipe(dir: String, model: String, text: String, randomSeed: Int = 1) -> String {
        """
        {"version": 1, "model": "\(model)",
         "calibration": {"dataset": "\(text)", "samples": 4, "seqLen": 16, "seed": 1},
         "grouping": {"type": "llama", "structures": ["kv-groups", "mlp-channels"], "layers": [0, 1]},
         "criterion": {"type": "magnitude"},
         "scheduler": {"type": "uniform", "ratio": 0.2},
         "evaluation": {"datasets": ["\(text)"], "seqLen": 16, "maxWindows": 3},
         "output": {"dir": "\(dir)/out", "formats": ["gguf"], "dtype": "f32"},
         "sweep": {"title": "tiny", "notes": "A tiny random model.", "methods": [{"name": "magnitude"},
                                                {"name": "random", "criterion": {"type": "random", "seed": \(randomSeed)}}],
                   "sparsities": [0.1, 0.3]}}
        """
    }

    func run(_ json: String, _ dir: String, cachedOnly: Bool = false) throws -> (rows: [SweepResult], log: [String]) {
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/sweep.json"))
        let recipe = try Recipe.load(path: dir + "/sweep.json", plugins: .builtins())
        let c = try Comparison(recipe: recipe, recipePath: dir + "/sweep.json")
        c.cachedOnly = cachedOnly
        var lines: [String] = []
        c.log = { lines.append($0) }
        return (try c.run(), lines)
    }

    /// SAAP with bounds that cannot reach a high ratio: that entry is listed with its reason and the
    /// sweep goes on with the others.
    @Test func anEntryWhoseTargetCannotBeMetIsListedAndTheSweepGoesOn() throws {
        let dir = try temporaryDirectory("prune-sweep-infeasible")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)
        let json = sweepRecipe(dir: dir, model: model, text: text).replacingOccurrences(of: #"{"name": "magnitude"},"#, with:
            #"{"name": "saap", "criterion": {"type": "magnitude"}, "scheduler": {"type": "saap", "minRatio": 0.0, "maxRatio": 0.4}},"#)
        let r = try run(json, dir)
        #expect(r.rows.filter { $0.name == "random" }.count == 2 && r.rows.first?.dense == true, "the other entries ran")
        #expect(!r.rows.contains { $0.name == "saap" && $0.ratio == 0.3 })
        #expect(r.log.contains { $0.contains("saap at 30%: could not run: scheduler 'saap': the target needs") })
        let md = try String(contentsOfFile: "\(dir)/out/comparison.md", encoding: .utf8)
        #expect(md.contains("**Could not run**") && md.contains("- saap at 30%: scheduler 'saap'"), "\(md)")
    }

    @Test func aSweepWritesItsTableAndReusesItsCache() throws {
        let dir = try temporaryDirectory("prune-sweep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)

        let first = try run(sweepRecipe(dir: dir, model: model, text: text), dir)
        #expect(first.rows.map(\.name) == ["dense", "magnitude", "random", "magnitude", "random"])
        #expect(first.rows.map(\.ratio) == [0, 0.1, 0.1, 0.3, 0.3])
        #expect(first.rows.allSatisfy { $0.perplexity.count == 1 && $0.perplexity[0].ppl.isFinite })
        #expect(first.rows[0].removedFraction == 0 && first.rows.dropFirst().allSatisfy { $0.removedFraction > 0 })
        #expect(first.rows[3].removedFraction > first.rows[1].removedFraction)
        #expect(Set(first.rows.map(\.key)).count == 5)
        #expect(first.log.filter { $0.contains(": cached") }.isEmpty)
        for f in ["comparison.md", "comparison.csv", "comparison.json", "ppl_vs_sparsity.svg", "accuracy_vs_sparsity.svg"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/\(f)"), "\(f)")
        }
        // Exported models are deleted after evaluation unless keepModels; reports stay.
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/runs/magnitude-10/tiny.pruned.f32.gguf"))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/out/runs/magnitude-10/report.json"))

        let md = try String(contentsOfFile: "\(dir)/out/comparison.md", encoding: .utf8)
        #expect(md.hasPrefix("# tiny\n") && md.contains("\n\nA tiny random model.\n\n"))
        #expect(md.contains("| Ratio | Method | Params | Removed | text.txt↓ | Prune | Fine-tune | Total |"))
        #expect(md.contains("| 0% | w/o pruning |") && md.contains("| 10% | magnitude |") && md.contains("|  | random |"))
        #expect(md.contains("## How much the choice of method matters"))
        let csv = try String(contentsOfFile: "\(dir)/out/comparison.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 6 && csv[0].hasPrefix("ratio,method,fine_tune,parameters,removed_fraction,ppl_"))
        let svg = try String(contentsOfFile: "\(dir)/out/ppl_vs_sparsity.svg", encoding: .utf8)
        #expect(svg.contains("<svg") && svg.contains("magnitude") && svg.contains("random"))

        // Unchanged: every row from the cache, same numbers.
        let second = try run(sweepRecipe(dir: dir, model: model, text: text), dir)
        #expect(second.log.filter { $0.contains(": cached") }.count == 5)
        #expect(second.rows.map(\.key) == first.rows.map(\.key))
        #expect(second.rows.map { $0.perplexity[0].ppl } == first.rows.map { $0.perplexity[0].ppl })

        // One method changed: only its two entries run again; a damaged cache file is recomputed.
        try Data("{".utf8).write(to: URL(fileURLWithPath: "\(dir)/out/cache/\(first.rows[1].key).json"))
        let third = try run(sweepRecipe(dir: dir, model: model, text: text, randomSeed: 2), dir)
        #expect(third.log.filter { $0.contains(": cached") }.count == 2)
        #expect(third.log.contains { $0.contains("is unreadable; recomputing it") })
        #expect(third.rows[1].perplexity[0].ppl == first.rows[1].perplexity[0].ppl)
        #expect(third.rows[2].key != first.rows[2].key && third.rows[4].key != first.rows[4].key)

        // --from-cache: only cached rows; the others are listed as not measured.
        let fourth = try run(sweepRecipe(dir: dir, model: model, text: text, randomSeed: 3), dir, cachedOnly: true)
        #expect(fourth.rows.map(\.name) == ["dense", "magnitude", "magnitude"])
        let md4 = try String(contentsOfFile: "\(dir)/out/comparison.md", encoding: .utf8)
        #expect(md4.contains("**Not measured yet** (2 entries of the sweep; running the same command computes them): random at 10%; random at 30%."))
    }

    @Test func zeroShotTasksReachTheRowsAndTheTable() throws {
        let dir = try temporaryDirectory("prune-sweep-zs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Byte-level tokens: PIQA's longest choices need more than 64 positions.
        let (model, text) = try tinyFiles(dir, contextLength: 1024)
        let json = sweepRecipe(dir: dir, model: model, text: text)
            .replacingOccurrences(of: #""maxWindows": 3"#, with: #""maxWindows": 3, "tasks": ["piqa", "arc_challenge"], "taskLimit": 2"#)
            .replacingOccurrences(of: "[0.1, 0.3]", with: "[0.1]")
        let rows = try run(json, dir).rows
        #expect(rows.count == 3 && rows.allSatisfy { $0.zeroShot.map(\.task) == ["piqa", "arc_challenge"] && $0.zeroShot.allSatisfy { $0.n == 2 } })
        let md = try String(contentsOfFile: "\(dir)/out/comparison.md", encoding: .utf8)
        #expect(md.contains("| PIQA | ARC-c | Average |") && md.contains("the first 2 items of each task"))
        let report = try String(contentsOfFile: "\(dir)/out/runs/magnitude-10/report.md", encoding: .utf8)
        #expect(report.contains("## Zero-shot accuracy of the final model") && report.contains("| piqa | 2 |"))
    }

    @Test func missingTaskDataIsCaughtBeforeLoading() throws {
        let dir = try temporaryDirectory("prune-nodata")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)
        let json = sweepRecipe(dir: dir, model: model, text: text).replacingOccurrences(of: #""maxWindows": 3"#, with: #""maxWindows": 3, "tasks": ["piqa"]"#)
        let recipe = try Recipe.decode(Data(json.utf8), plugins: .builtins())
        do {
            try Comparison(recipe: recipe, recipePath: "r.json", dataDir: dir).preflight()
            Issue.record("preflight passed")
        } catch let e as PruneError {
            #expect(e.message.contains("recipe: evaluation.tasks: zero-shot task 'piqa': 'zeroshot/piqa_valid.jsonl' was not found; looked in '\(dir)' (--data-dir)"), "\(e.message)")
        }
    }

    @Test func tablesLayOutRatiosAndSpreads() {
        func row(_ name: String, _ ratio: Double, _ ppl: Double, acc: Double, ft: Bool = false, dense: Bool = false) -> SweepResult {
            SweepResult(key: name, name: name, method: name, ratio: ratio, fineTune: ft, dense: dense, parameters: 100,
                             removedFraction: ratio, perplexity: [PerplexityResult(dataset: "wikitext2", split: "test", joining: "", seqLen: 128,
                                                                                    windows: 1, tokens: 127, meanNLL: log(ppl), ppl: ppl, seconds: 1, tokensPerSecond: 1)],
                             perplexityBeforeFineTune: nil,
                             zeroShot: [ZeroShotResult(task: "piqa", n: 10, acc: acc, accStderr: 0, accNorm: 0, accNormStderr: 0, seconds: 1),
                                        ZeroShotResult(task: "hellaswag", n: 10, acc: 0, accStderr: 0, accNorm: acc / 2, accNormStderr: 0, seconds: 1)],
                             seconds: 10, pruneSeconds: 2, fineTuneSeconds: ft ? 5 : nil, evaluateSeconds: 3, modelSHA256: "ab", entry: .null, measured: "")
        }
        var ev = Recipe.Evaluation()
        ev.tasks = ["piqa", "hellaswag"]
        let t = ComparisonTable(results: [row("b", 0.5, 300, acc: 0.5), row("a", 0.2, 100, acc: 0.6), row("a + lora", 0.2, 80, acc: 0.64, ft: true),
                                          row("dense", 0, 50, acc: 0.7, dense: true), row("b", 0.2, 200, acc: 0.4)],
                                title: "t", recipePath: "r.json", evaluation: ev, totalSeconds: 1)
        // Ratios ascending; in each, plain entries (in the order given) before fine-tuned ones.
        #expect(t.ordered.map(\.name) == ["dense", "a", "b", "a + lora", "b"])
        #expect(t.ordered.map(\.ratio) == [0, 0.2, 0.2, 0.2, 0.5])
        // HellaSwag contributes acc_norm; the average is over both tasks.
        #expect(t.markdown.contains("| 20% | a | 100 | 20.00% | 100.00 | 60.00 | 30.00 | 45.00 | 2 s | | 10 s |".replacingOccurrences(of: "| |", with: "|  |")))
        #expect(t.markdown.contains("| 20% | WikiText-2 PPL | 2 | 100.00 (a) | 200.00 | 200.00 (b) | ×2.00 |"))
        #expect(t.markdown.contains("| 20% | average accuracy | 2 | 45.00 (a) | 45.00 | 30.00 (b) | 15.00 points |"))
        #expect(!t.markdown.contains("| 50% | WikiText-2 PPL"))  // one method only
    }
}
