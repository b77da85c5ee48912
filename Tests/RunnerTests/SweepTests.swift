import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// A recipe's `sweep`: expansion into entries, patch rules, and errors that name the place.
@Suite struct SweepTests {
    static let base = """
    {"version": 1, "model": "models/m.gguf",
     "grouping": {"type": "llama", "layers": [0, 1]},
     "criterion": {"type": "magnitude"},
     "scheduler": {"type": "uniform", "ratio": 0.2},
     "fineTuner": {"type": "lora", "steps": 3},
     "evaluation": {"datasets": ["wikitext2"], "tasks": ["piqa"], "taskLimit": 5},
     "sweep": SWEEP}
    """

    func recipe(_ sweep: String) throws -> Recipe {
        try Recipe.decode(Data(Self.base.replacingOccurrences(of: "SWEEP", with: sweep).utf8), plugins: .builtins())
    }

    func error(_ sweep: String) -> String? { recipeError(Self.base.replacingOccurrences(of: "SWEEP", with: sweep)) }

    /// The grouping was first called `llama`: both names decode to `decoder`, and an entry's cache
    /// identity keeps the first name, so results measured before the rename are still found.
    @Test func theRenamedGroupingKeepsItsOldNameAndCacheKeys() throws {
        let sweep = #"{"methods": [{"name": "m", "criterion": {"type": "magnitude"}}], "sparsities": [0.2]}"#
        let old = try recipe(sweep)
        let new = try Recipe.decode(Data(Self.base.replacingOccurrences(of: "SWEEP", with: sweep)
            .replacingOccurrences(of: #""type": "llama""#, with: #""type": "decoder""#).utf8), plugins: .builtins())
        #expect(type(of: old.grouping).name == "decoder" && type(of: new.grouping).name == "decoder")
        #expect(try new.resolvedJSON().object?["grouping"]?.object?["type"] == .string("decoder"))
        let a = try Comparison.identity(old, dense: false), b = try Comparison.identity(new, dense: false)
        #expect(a == b && a.object?["grouping"]?.object?["type"] == .string("llama"))
    }

    @Test func methodsTimesSparsitiesTimesFineTune() throws {
        let s = try #require(try recipe("""
        {"methods": [{"name": "mag"}, {"name": "pg", "criterion": {"type": "policy-gradient", "steps": 2}, "scheduler": {"type": "global"}}],
         "sparsities": [0.1, {"ratio": 0.5, "calibration": {"samples": 3}}]}
        """).sweep)
        // The base has a fine-tuner, so fine-tuning defaults to [false, true].
        // Plain entries first, then the fine-tuned ones; sparsity by sparsity, every method at each.
        #expect(s.entries.map(\.name) == ["mag", "pg", "mag", "pg", "mag + lora", "pg + lora", "mag + lora", "pg + lora"])
        #expect(s.entries.map(\.ratio) == [0.1, 0.1, 0.5, 0.5, 0.1, 0.1, 0.5, 0.5])
        #expect(s.entries.map { $0.recipe.fineTuner != nil } == [false, false, false, false, true, true, true, true])
        // The sparsity reaches the scheduler, and the criterion that declares a ratio.
        let pg = s.entries[7]
        #expect(pg.json["scheduler"]?.object?["ratio"] == .number(0.5) && pg.json["criterion"]?.object?["ratio"] == .number(0.5))
        #expect(s.entries[0].json["criterion"]?.object?["ratio"] == nil)
        // A different type replaces the base's stage; the same type merges; the per-sparsity patch applies.
        #expect(pg.json["criterion"]?.object?["steps"] == .int(2) && type(of: pg.recipe.criterion).name == "policy-gradient")
        #expect(type(of: pg.recipe.scheduler).name == "global")
        #expect(s.entries.map(\.recipe.calibration.samples) == [10, 10, 3, 3, 10, 10, 3, 3])
        #expect(s.entries[0].recipe.evaluation.tasks == ["piqa"] && s.entries[0].recipe.evaluation.taskLimit == 5)
        #expect(s.dense && !s.keepModels && s.cache == nil)
    }

    /// A method with its own `fineTune` has only those rows: a distillation variant of the fine-tuner.
    @Test func aMethodCanHaveFineTunedRowsOnly() throws {
        let s = try #require(try recipe("""
        {"methods": [{"name": "mag"}, {"name": "mag (kl loss)", "fineTune": [true], "fineTuner": {"loss": {"type": "kl"}}}],
         "sparsities": [0.1, 0.5]}
        """).sweep)
        #expect(s.entries.map(\.name) == ["mag", "mag", "mag + lora", "mag (kl loss) + lora", "mag + lora", "mag (kl loss) + lora"])
        #expect(s.entries.map { $0.recipe.fineTuner?.distillation != nil } == [false, false, false, true, false, true])
        #expect(s.entries[3].json["fineTune"] == nil)
    }

    @Test func patchesMergeAndNullDeletes() throws {
        let s = try #require(try recipe("""
        {"methods": [{"name": "a", "grouping": {"structures": ["blocks"]}, "fineTuner": null}], "sparsities": [0.3], "fineTune": [false]}
        """).sweep)
        #expect(s.entries.count == 1)
        let g = try #require(s.entries[0].json["grouping"]?.object)
        #expect(g["type"] == .string("llama") && g["structures"] == .array([.string("blocks")]) && g["layers"] != nil)
        #expect(s.entries[0].json["fineTuner"] == nil)
    }

    @Test(arguments: [
        (#"{"methods": [{"name": "a"}], "sparsities": [0.2], "cahce": "x"}"#, "sweep.cahce is not a sweep key"),
        (#"{"methods": [], "sparsities": [0.2]}"#, "sweep.methods must be a non-empty array"),
        (#"{"methods": [{"name": "a"}]}"#, "sweep.sparsities must be a non-empty array"),
        (#"{"methods": [{"criterion": {"type": "random"}}], "sparsities": [0.2]}"#, "sweep.methods[0].name is required"),
        (#"{"methods": [{"name": "a"}, {"name": "a"}], "sparsities": [0.2]}"#, "sweep.methods[1].name = 'a' is used twice"),
        (#"{"methods": [{"name": "a", "evaluation": {}}], "sparsities": [0.2]}"#, "sweep.methods[0].evaluation is not a method key"),
        (#"{"methods": [{"name": "a"}], "sparsities": [1.5]}"#, "sweep.sparsities[0] = '1.5' is not a fraction of parameters in (0, 1)"),
        (#"{"methods": [{"name": "a"}], "sparsities": [true]}"#, "sweep.sparsities[0] must be a number"),
        (#"{"methods": [{"name": "a"}], "sparsities": [0.2, {"ratio": 0.2}]}"#, "sweep.sparsities[1] = '0.2' is listed twice"),
        (#"{"methods": [{"name": "a"}], "sparsities": [{"ratio": 0.2, "output": {}}]}"#, "sweep.sparsities[0].output cannot be patched per sparsity"),
        (#"{"methods": [{"name": "a"}], "sparsities": [0.2], "fineTune": [1]}"#, "sweep.fineTune must be a non-empty array of true/false"),
        (#"{"methods": [{"name": "a"}], "sparsities": [0.2], "dense": "yes"}"#, "sweep.dense must be true or false"),
        (#"{"methods": [{"name": "a"}], "sparsities": [0.2], "notes": ["x"]}"#, "sweep.notes must be a string"),
        (#"{"methods": [{"name": "a", "fineTuner": null}], "sparsities": [0.2], "fineTune": [true]}"#,
         "sweep.methods[0] ('a') at ratio 0.2 with fine-tuning: sweep.fineTune holds true but no fineTuner is set"),
        (#"{"methods": [{"name": "nm", "scheduler": {"type": "n:m"}}], "sparsities": [0.2]}"#, "scheduler 'n:m' takes no 'ratio'"),
        (#"{"methods": [{"name": "a", "fineTune": [true]}], "sparsities": [0.2], "fineTune": [false]}"#,
         "sweep.methods[0].fineTune must be a non-empty array of true/false within sweep.fineTune [false]"),
        (#"{"methods": [{"name": "a"}], "sparsities": [{"ratio": 0.2, "fineTune": [true]}]}"#, "sweep.sparsities[0].fineTune cannot be patched per sparsity"),
        (#"{"methods": [{"name": "w", "criterion": {"type": "wandaa"}}], "sparsities": [0.2]}"#,
         "sweep.methods[0] ('w') at ratio 0.2: criterion.type = 'wandaa' is not a registered criterion plugin"),
        (#"{"methods": [{"name": "t", "criterion": {"type": "taylor", "estimator": "vec"}}], "sparsities": [0.2]}"#,
         "sweep.methods[0] ('t') at ratio 0.2: criterion.estimator = 'vec' is not allowed"),
    ])
    func badSweepsNameThePlace(sweep: String, fragment: String) {
        let m = error(sweep)
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
    }

    @Test func anUnknownTaskInEvaluationIsNamed() {
        let json = Self.base.replacingOccurrences(of: #""tasks": ["piqa"]"#, with: #""tasks": ["piqa", "mmlu"]"#)
            .replacingOccurrences(of: "SWEEP", with: #"{"methods": [{"name": "a"}], "sparsities": [0.2]}"#)
        do {
            _ = try Recipe.decode(Data(json.utf8), plugins: .builtins())
            Issue.record("decoded")
        } catch let e as PruneError {
            #expect(e.message.contains("evaluation.tasks[1] = 'mmlu' is not a zero-shot task"), "\(e.message)")
        } catch { Issue.record("\(error)") }
    }
}
