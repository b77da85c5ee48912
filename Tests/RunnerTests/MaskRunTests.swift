import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// Mask mode (unstructured and N:M sparsity) from a recipe: its errors, and a whole run on a tiny model.
@Suite struct MaskRunTests {
    static let recipe = """
    {"version": 1, "model": "models/m.gguf",
     "grouping": {"type": "llama", "layers": [0, 1]},
     "criterion": {"type": "wanda"},
     "scheduler": {"type": "n:m", "n": 2, "m": 4}}
    """


    @Test(arguments: [
        ("\"n\": 2, \"m\": 4", "\"n\": 2, \"mm\": 4", "unknown key 'mm' at scheduler.mm for 'n:m'; allowed keys: m, n"),
        ("\"n\": 2, \"m\": 4", "\"n\": 4, \"m\": 4", "scheduler.n = '4' is out of range; allowed 1...3"),
        ("\"n\": 2, \"m\": 4", "\"n\": 0", "scheduler.n = '0' is out of range; allowed 1...3"),
        ("\"n\": 2, \"m\": 4", "\"n\": 2, \"m\": 1", "scheduler.m = '1' is out of range; allowed 2...16"),
        ("\"n\": 2, \"m\": 4", "\"n\": 2, \"m\": 32", "scheduler.m = '32' is out of range; allowed 2...16"),
        ("\"n\": 2, \"m\": 4", "\"n\": \"2\"", "scheduler.n must be an integer"),
        ("\"type\": \"n:m\", \"n\": 2, \"m\": 4", "\"type\": \"unstructured\", \"ratio\": 1.0", "scheduler.ratio = '1.0' is out of range; allowed [0.0, 1.0)"),
        ("\"type\": \"n:m\", \"n\": 2, \"m\": 4", "\"type\": \"unstructured\", \"scope\": \"layer\"", "scheduler.scope = 'layer' is not allowed; choose one of: row, matrix"),
        ("\"type\": \"n:m\", \"n\": 2, \"m\": 4", "\"type\": \"unstructured\", \"sparsity\": 0.5", "unknown key 'sparsity' at scheduler.sparsity for 'unstructured'; allowed keys: ratio, scope"),
        ("\"type\": \"n:m\"", "\"type\": \"2:4\"", "scheduler.type = '2:4' is not a registered scheduler plugin; registered: uniform, global, iterative, unstructured, n:m"),
    ])
    func badMaskRecipesNameThePath(from: String, to: String, fragment: String) {
        let m = recipeError(Self.recipe.replacingOccurrences(of: from, with: to))
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
    }

    @Test func defaultsAreTwoOfFourAndHalfPerRow() throws {
        let r = try Recipe.decode(Data(Self.recipe.replacingOccurrences(of: ", \"n\": 2, \"m\": 4", with: "").utf8), plugins: .builtins())
        #expect((r.scheduler as? any MaskScheduler)?.pattern == "2:4")
        let u = try Recipe.decode(Data(Self.recipe.replacingOccurrences(of: "\"type\": \"n:m\", \"n\": 2, \"m\": 4", with: "\"type\": \"unstructured\"").utf8), plugins: .builtins())
        #expect((u.scheduler as? any MaskScheduler)?.pattern == "50% unstructured per row")
    }

    /// A criterion that scores structures only.
    struct UnitsOnly: Criterion {
        static let name = "units-only"
        static let summary = "test: scores structures, not weights"
        static let keys: [PluginKey] = []
        init(from decoder: Decoder) throws { try decoder.checkPluginKeys(Self.self) }
        func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] { group.units.map { _ in 0 } }
    }

    @Test func aCriterionWithoutWeightScoresIsRejectedBeforeLoading() throws {
        let plugins = PluginSet.builtins()
        plugins.criteria.register(UnitsOnly.self) { $0 }
        let m = preflightError(Self.recipe.replacingOccurrences(of: "wanda", with: "units-only"), plugins: plugins)
        #expect(m?.contains("criterion.type = 'units-only' scores structures only, but scheduler 'n:m' zeroes single weights") == true, "got: \(m ?? "no error")")
    }

    @Test func compensatingAMaskIsRefusedBeforeLoading() throws {
        let json = Self.recipe.replacingOccurrences(of: "\"scheduler\":", with: "\"compensator\": {\"type\": \"obs\"}, \"scheduler\":")
        let m = preflightError(json)
        #expect(m?.contains("compensator.type = 'obs' updates the weights a structure scheduler keeps, but scheduler 'n:m'") == true, "got: \(m ?? "no error")")
    }

    @Test func fineTuningAfterMaskingIsRefusedBeforeLoading() throws {
        let json = Self.recipe.replacingOccurrences(of: "\"scheduler\":", with: "\"fineTuner\": {\"type\": \"lora\"}, \"scheduler\":")
        let m = preflightError(json)
        #expect(m?.contains("fineTuner.type = 'lora' after scheduler 'n:m' would refill the zeroed weights") == true, "got: \(m ?? "no error")")
    }

    @Test func sppAfterAStructureSchedulerIsRefusedBeforeLoading() throws {
        let json = Self.recipe.replacingOccurrences(of: #"{"type": "n:m", "n": 2, "m": 4}"#, with: #"{"type": "uniform", "ratio": 0.2}"#)
            .replacingOccurrences(of: "\"scheduler\":", with: "\"fineTuner\": {\"type\": \"spp\"}, \"scheduler\":")
        let m = preflightError(json)
        #expect(m?.contains("fineTuner.type = 'spp' keeps the zeros of single weights, which only a mask scheduler (unstructured, n:m) makes; scheduler 'uniform'") == true, "got: \(m ?? "no error")")
    }

    @Test func sequentialCalibrationMustBeABoolean() throws {
        let bad = recipeError(Self.recipe.replacingOccurrences(of: "\"grouping\"", with: "\"calibration\": {\"sequential\": 1}, \"grouping\""))
        #expect(bad?.contains("calibration.sequential must be") == true, "got: \(bad ?? "no error")")
    }

    /// Recipes that do not ask for it keep their resolved form (and so their sweep cache keys).
    @Test func sequentialAppearsInTheResolvedRecipeOnlyWhenSet() throws {
        let plain = try Recipe.decode(Data(Self.recipe.utf8), plugins: .builtins()).resolvedJSON()
        #expect(plain.object?["calibration"]?.object?["sequential"] == nil)
        let json = Self.recipe.replacingOccurrences(of: "\"grouping\"", with: "\"calibration\": {\"sequential\": true}, \"grouping\"")
        let set = try Recipe.decode(Data(json.utf8), plugins: .builtins()).resolvedJSON()
        #expect(set.object?["calibration"]?.object?["sequential"] == .bool(true))
    }

    @Test func listAndSchemaShowTheMaskSchedulers() throws {
        let items = RecipeCommands.listing(.builtins())
        #expect(Set(items.map(\.name)).isSuperset(of: ["unstructured", "n:m"]))
        let schema = String(decoding: try JSONSerialization.data(withJSONObject: RecipeCommands.schema(.builtins())), as: UTF8.self)
        #expect(schema.contains("\"n:m\"") && schema.contains("\"unstructured\""))
    }

    // MARK: - A whole run on a tiny model

    @Test(arguments: [("wanda", #"{"type": "n:m", "n": 2, "m": 4}"#), ("magnitude", #"{"type": "unstructured", "ratio": 0.5}"#),
                      ("random", #"{"type": "unstructured", "ratio": 0.5, "scope": "matrix"}"#)])
    func aTinyModelIsMaskedEndToEnd(criterion: String, scheduler: String) throws {
        let dir = try temporaryDirectory("prune-mask")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (modelPath, textPath) = try tinyFiles(dir)
        let json = """
        {"version": 1, "model": "\(modelPath)",
         "calibration": {"dataset": "\(textPath)", "samples": 4, "seqLen": 16, "seed": 1},
         "grouping": {"type": "llama", "layers": [1, 1]},
         "criterion": {"type": "\(criterion)"}, "scheduler": \(scheduler),
         "evaluation": {"datasets": ["\(textPath)"], "seqLen": 16, "maxWindows": 4},
         "output": {"dir": "\(dir)/out", "formats": ["gguf"], "dtype": "f32"}}
        """
        let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "tiny.json")
        run.log = { _ in }
        let report = try run.run()
        #expect(report.paramsAfter == report.paramsBefore && report.removedFraction == 0)
        #expect(report.pplAfter?.isFinite == true)
        let summary = try #require(run.maskSummary)
        #expect(summary.matrices.map(\.tensor) == ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map { "blk.1.\($0).weight" })
        #expect(summary.sparsity == 0.5 && summary.parameters == report.paramsBefore)

        // The export has the dense shapes, with the zeros; layer 0, embeddings and norms are untouched.
        let original = try Transformer(path: modelPath)
        let exported = try Transformer(path: dir + "/out/" + "tiny.pruned.f32.gguf")
        #expect(exported.config == original.config)
        for e in original.params.entries {
            let a = Array(original.params.view(e.name)), b = Array(exported.params.view(e.name))
            if e.name.hasPrefix("blk.1.") && e.shape.count == 2 {
                #expect(b.filter { $0 == 0 }.count == e.count / 2, "\(e.name)")
                #expect(zip(a, b).allSatisfy { $1 == 0 || $0 == $1 }, "\(e.name)")
                if scheduler.contains("n:m") {
                    for g in stride(from: 0, to: e.count, by: 4) { #expect(b[g..<(g + 4)].filter { $0 != 0 }.count == 2) }
                }
            } else {
                #expect(a == b, "\(e.name) changed")
            }
        }
        let json2 = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/report.json"))) as? [String: Any]
        let ws = try #require(json2?["weight_sparsity"] as? [String: Any])
        #expect(ws["sparsity"] as? Double == 0.5 && ws["parameters"] as? Int == report.paramsBefore)
        let md = try String(contentsOfFile: dir + "/out/report.md", encoding: .utf8)
        #expect(md.contains("sparsity 50.00%") && md.contains("The parameter count is unchanged") && md.contains("neither smaller nor faster there"))
    }

    /// Wanda's layer-by-layer calibration: layer 0 is scored on the dense model as before, layer 1 on
    /// what the masked layer 0 produces, so its mask changes.
    @Test func sequentialCalibrationMasksLaterLayersOnTheMaskedEarlierOnes() throws {
        let dir = try temporaryDirectory("prune-mask-seq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (modelPath, textPath) = try tinyFiles(dir)
        func masked(sequential: Bool) throws -> (Transformer, MaskSummary) {
            let json = """
            {"version": 1, "model": "\(modelPath)",
             "calibration": {"dataset": "\(textPath)", "samples": 4, "seqLen": 16, "seed": 1, "sequential": \(sequential)},
             "grouping": {"type": "llama", "layers": [0, 1]},
             "criterion": {"type": "wanda"}, "scheduler": {"type": "unstructured", "ratio": 0.5},
             "evaluation": {"datasets": ["\(textPath)"], "seqLen": 16, "maxWindows": 2},
             "output": {"dir": "\(dir)/out-\(sequential)", "formats": ["gguf"], "dtype": "f32"}}
            """
            let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "tiny.json")
            run.log = { _ in }
            _ = try run.run()
            return (try Transformer(path: dir + "/out-\(sequential)/tiny.pruned.f32.gguf"), try #require(run.maskSummary))
        }
        let (onePass, s1) = try masked(sequential: false)
        let (stepwise, s2) = try masked(sequential: true)
        #expect(s1.sparsity == 0.5 && s2.sparsity == 0.5 && s2.matrices.map(\.tensor) == s1.matrices.map(\.tensor))
        func zeros(_ m: Transformer, _ t: String) -> [Bool] { m.params.view(t).map { $0 == 0 } }
        for t in s1.matrices.map(\.tensor) where t.hasPrefix("blk.0.") { #expect(zeros(stepwise, t) == zeros(onePass, t), "\(t)") }
        let layer1 = s1.matrices.map(\.tensor).filter { $0.hasPrefix("blk.1.") }
        #expect(layer1.contains { zeros(stepwise, $0) != zeros(onePass, $0) })
    }

    /// 2:4 masking, then SPP distilling from the dense model: the export has exactly the mask's
    /// zeros (those of the same run without fine-tuning), and the kept weights changed.
    @Test func sppAfterNMKeepsTheMaskInTheExport() throws {
        let dir = try temporaryDirectory("prune-mask-spp")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (modelPath, textPath) = try tinyFiles(dir)
        func run(_ fineTuner: String, _ out: String) throws -> (Transformer, RunReport) {
            let json = """
            {"version": 1, "model": "\(modelPath)",
             "calibration": {"dataset": "\(textPath)", "samples": 4, "seqLen": 16, "seed": 1},
             "grouping": {"type": "llama"}, "criterion": {"type": "wanda"}, "scheduler": {"type": "n:m", "n": 2, "m": 4},
             \(fineTuner)
             "evaluation": {"datasets": ["\(textPath)"], "seqLen": 16, "maxWindows": 2},
             "output": {"dir": "\(dir)/\(out)", "formats": ["gguf"], "dtype": "f32"}}
            """
            let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "tiny.json")
            var lines: [String] = []
            run.log = { lines.append($0) }
            let report = try run.run()
            if !fineTuner.isEmpty { #expect(lines.contains { $0.contains("distilling from the dense model (τ = 1, α = 0.5)") }, "\(lines)") }
            return (try Transformer(path: dir + "/\(out)/tiny.pruned.f32.gguf"), report)
        }
        let (masked, _) = try run("", "masked")
        let ft = #""fineTuner": {"type": "spp", "steps": 4, "batch": 2, "seqLen": 16, "learningRate": 0.01, "dataset": "\#(textPath)", "loss": {"type": "kl"}},"#
        let (tuned, report) = try run(ft, "tuned")
        #expect(report.fineTune?.losses.count == 4)
        var changed = 0
        for e in masked.params.entries {
            let a = Array(masked.params.view(e.name)), b = Array(tuned.params.view(e.name))
            #expect(zip(a, b).allSatisfy { ($0 == 0) == ($1 == 0) }, "\(e.name): the zeros differ")
            if a != b { changed += 1 }
        }
        #expect(changed == 7 * masked.config.nLayers, "\(changed) tensors changed")
    }
}
