import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// FLAP's bias compensation in a run: between the plan and the surgery, refused where it cannot
/// apply, before any work.
@Suite(.serialized) struct FLAPCompensationRunTests {
    static let recipe = """
    {"version": 1, "model": "models/m.gguf",
     "grouping": {"type": "decoder", "structures": ["kv-groups", "mlp-channels"]},
     "criterion": {"type": "flap"},
     "scheduler": {"type": "global", "ratio": 0.2, "normalization": "none"}}
    """

    static func with(_ from: String, _ to: String) -> String { recipe.replacingOccurrences(of: from, with: to) }

    /// `compensate` is flap's: on another criterion it is an unknown key that says whose it is.
    @Test func compensateOnAnotherCriterionNamesTheKeyAndItsOwner() {
        let m = recipeError(Self.with(#""type": "flap""#, #""type": "wanda", "compensate": true"#))
        #expect(m?.contains("unknown key 'compensate' at criterion.compensate for 'wanda'") == true
                && m?.contains("'compensate' is a key of 'flap' only") == true, "got: \(m ?? "no error")")
        let b = recipeError(Self.with(#""type": "flap""#, #""type": "flap", "compensate": "yes""#))
        #expect(b?.contains("criterion.compensate must be true or false") == true, "got: \(b ?? "no error")")
    }

    @Test func listAndSchemaShowTheKey() throws {
        let flap = try #require(RecipeCommands.listing(.builtins()).first { $0.stage == "criterion" && $0.name == "flap" })
        #expect(flap.keys.contains { $0.name == "compensate" && $0.type == "boolean" && $0.defaultValue == "true" })
        let schema = RecipeCommands.schema(.builtins())
        let criteria = try #require(((schema["properties"] as? [String: Any])?["criterion"] as? [String: Any])?["oneOf"] as? [[String: Any]])
        let props = try #require(criteria.first { ($0["properties"] as? [String: Any])?["type"] as? [String: String] == ["const": "flap"] }?["properties"] as? [String: Any])
        let key = try #require(props["compensate"] as? [String: Any])
        #expect(key["type"] as? String == "boolean" && key["default"] as? Bool == true)
    }

    @Test func compensateWithACompensatorIsRefusedBeforeLoading() {
        let json = Self.with("\"scheduler\":", "\"compensator\": {\"type\": \"obs\"}, \"scheduler\":")
        let m = preflightError(json)
        #expect(m?.contains("criterion.compensate = true ('flap' compensates the channels it removes) and compensator.type = 'obs'") == true,
                "got: \(m ?? "no error")")
        let off = preflightError(json.replacingOccurrences(of: #""type": "flap""#, with: #""type": "flap", "compensate": false"#))
        #expect(off?.contains("does not exist") == true, "without compensate only the missing model stops it; got: \(off ?? "no error")")
    }

    @Test func compensateWithSafetensorsOutputIsRefusedBeforeLoading() {
        let m = preflightError(Self.with("\"scheduler\":", "\"output\": {\"formats\": [\"gguf\", \"safetensors\"]}, \"scheduler\":"))
        #expect(m?.contains("output.formats includes safetensors, but criterion.compensate = true") == true
                && m?.contains("set criterion.compensate to false") == true, "got: \(m ?? "no error")")
    }

    /// A criterion that scores weights and compensates (none of the built-ins does both).
    struct WeightsAndBias: WeightCriterion, CompensatingCriterion {
        static let name = "weights-and-bias"
        static let summary = "test: scores weights and compensates"
        static let keys = [PluginKey("repair", "boolean", default: "true", "test")]
        static let compensationKey = "repair"
        var compensates: Bool { true }
        init(from decoder: Decoder) throws { try decoder.checkPluginKeys(Self.self) }
        func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] { group.units.map { _ in 0 } }
        func weightScores(of tensor: String, context: ScoringContext) throws -> [Double] { [] }
        func compensate(_ model: Transformer, plan: PruningPlan, groups: [PruneGroup],
                        context: ScoringContext) throws -> (model: Transformer, summary: String) { (model, "") }
    }

    @Test func compensatingAMaskIsRefusedNamingTheKey() {
        let plugins = PluginSet.builtins()
        plugins.criteria.register(WeightsAndBias.self) { $0 }
        let mask = Self.with(#""type": "global", "ratio": 0.2, "normalization": "none""#, #""type": "n:m", "n": 2, "m": 4"#)
        let m = preflightError(mask.replacingOccurrences(of: "\"flap\"", with: "\"weights-and-bias\""), plugins: plugins)
        #expect(m?.contains("criterion.repair = true repairs the structures a plan removes, but scheduler 'n:m' zeroes single weights; set criterion.repair to false") == true,
                "got: \(m ?? "no error")")
        let flap = preflightError(mask)
        #expect(flap?.contains("criterion.type = 'flap' scores structures only") == true && flap?.contains("its criterion.compensate = true") == true,
                "got: \(flap ?? "no error")")
    }

    /// A whole run on a tiny model: the plan is compensated (in each step of an iterative run, adding
    /// to the biases of the step before), the export carries the biases and reads back with them;
    /// `compensate: false` leaves the model without.
    @Test(arguments: [(true, #"{"type": "global", "ratio": 0.2, "normalization": "none"}"#, 1),
                      (false, #"{"type": "global", "ratio": 0.2, "normalization": "none"}"#, 0),
                      (true, #"{"type": "iterative", "ratio": 0.3, "steps": 2, "allocation": "global", "normalization": "none"}"#, 2)])
    func aTinyModelIsCompensatedEndToEnd(compensate: Bool, scheduler: String, steps: Int) throws {
        let dir = try temporaryDirectory("prune-flap-bias")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (modelPath, textPath) = try tinyFiles(dir)
        let json = """
        {"version": 1, "model": "\(modelPath)",
         "calibration": {"dataset": "\(textPath)", "samples": 4, "seqLen": 16, "seed": 1},
         "grouping": {"type": "decoder", "structures": ["kv-groups", "mlp-channels"]},
         "criterion": {"type": "flap", "compensate": \(compensate)}, "scheduler": \(scheduler),
         "evaluation": {"datasets": ["\(textPath)"], "seqLen": 16, "maxWindows": 4},
         "output": {"dir": "\(dir)/out", "formats": ["gguf"], "dtype": "f32"}}
        """
        let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "tiny.json")
        var lines: [String] = []
        run.log = { lines.append($0) }
        let report = try run.run()
        #expect(report.pplAfter?.isFinite == true)
        #expect(lines.filter { $0.contains("flap: added the calibration mean output of") }.count == steps, "\(lines)")
        let exported = try Transformer(path: dir + "/out/tiny.pruned.f32.gguf")
        #expect(exported.config.outputBias == compensate)
        if compensate {
            #expect(try GGUFFile(path: dir + "/out/tiny.pruned.f32.gguf").tensor(named: "blk.1.ffn_down.bias") != nil)
            #expect(exported.params.view("blk.0.attn_output.bias").contains { $0 != 0 } || exported.params.view("blk.1.ffn_down.bias").contains { $0 != 0 })
        }
    }

    /// `Examples/recipes/flap.json`'s setting (global allocation, 20%, 10 × 64 C4 tokens, f16 export),
    /// WikiText-2 PPL@128 over 40 windows: without compensation it is README's 167.560; with it the
    /// plan and widths are the same, the model has 2 × 30 × 576 bias values more, and the PPL is
    /// 179.226 as measured when it was written (on SmolLM2 the attention's compensation costs more
    /// than the MLP's gains: README).
    @Test(.requires(.smolLM2)) func smolLM2WithAndWithoutCompensation() throws {
        let dir = try temporaryDirectory("prune-flap-smollm2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var reports: [Bool: RunReport] = [:], logs: [Bool: [String]] = [:]
        for compensate in [false, true] {
            let json = """
            {"version": 1, "model": "\(RequiredFile.smolLM2.path)", "calibration": {"dataset": "c4", "samples": 10, "seqLen": 64, "seed": 42},
             "grouping": {"type": "decoder", "structures": ["kv-groups", "mlp-channels"], "layers": [3, 26]},
             "criterion": {"type": "flap", "compensate": \(compensate)}, "scheduler": {"type": "global", "ratio": 0.2, "normalization": "none"},
             "evaluation": {"datasets": ["wikitext2"], "seqLen": 128, "maxWindows": 40},
             "output": {"dir": "\(dir)/\(compensate)", "formats": ["gguf"], "type": "f16"}}
            """
            let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
            run.log = { logs[compensate, default: []].append($0) }
            run.evaluateDense = false
            reports[compensate] = try run.run()
        }
        let (plain, compensated) = (try #require(reports[false]), try #require(reports[true]))
        #expect(plain.widthsAfter == compensated.widthsAfter && compensated.paramsAfter == plain.paramsAfter + 2 * 30 * 576)
        #expect(logs[true]?.contains { $0.contains("flap: added the calibration mean output of 2880 removed attn_output columns in 14 layers and 13009 removed ffn_down columns in 20 layers") } == true,
                "\(logs[true]?.filter { $0.contains("flap:") } ?? [])")
        let (a, b) = (try #require(plain.pplAfter), try #require(compensated.pplAfter))
        print("flap 20% on SmolLM2, WikiText-2 PPL@128 (40 windows): compensate false \(a), true \(b)")
        #expect(abs(a - 167.560) < 0.01 && abs(b - 179.226) < 0.01, "PPL \(a) without, \(b) with compensation")
    }
}
