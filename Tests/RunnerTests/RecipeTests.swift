import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// Bad recipes fail before any heavy work, naming the JSON path and the allowed values.
@Suite struct RecipeTests {
    static let good = """
    {"version": 1, "model": "models/m.gguf",
     "grouping": {"type": "llama", "layers": [3, 26]},
     "criterion": {"type": "magnitude", "norm": "l1"},
     "scheduler": {"type": "uniform", "ratio": 0.2}}
    """


    /// Replaces one fragment of the good recipe.
    func bad(_ from: String, _ to: String) -> String { Self.good.replacingOccurrences(of: from, with: to) }

    @Test func theGoodRecipeDecodesWithDefaults() throws {
        let r = try Recipe.decode(Data(Self.good.utf8), plugins: .builtins())
        #expect(r.calibration == Recipe.Calibration())
        #expect(r.evaluation.seqLen == 128 && r.output.formats == ["gguf"])
        #expect(type(of: r.criterion).name == "magnitude")
        #expect(r.output.type == "same-as-input")
        // `dtype`, the setting's first name, still works.
        let old = try Recipe.decode(Data(bad("}}", "}, \"output\": {\"dtype\": \"q8_0\"}}").utf8), plugins: .builtins())
        #expect(old.output.type == "q8_0")
    }

    @Test(arguments: [
        ("\"norm\": \"l1\"", "\"nrom\": \"l1\"", "unknown key 'nrom' at criterion.nrom"),
        ("\"norm\": \"l1\"", "\"norm\": \"l3\"", "criterion.norm = 'l3' is not allowed; choose one of: l1, l2"),
        ("\"type\": \"magnitude\"", "\"type\": \"magnitud\"", "criterion.type = 'magnitud' is not a registered criterion plugin; registered: magnitude, random, wanda"),
        ("\"ratio\": 0.2", "\"ratio\": 1.0", "scheduler.ratio = '1.0' is out of range; allowed [0.0, 1.0)"),
        ("\"ratio\": 0.2", "\"ratio\": -0.1", "scheduler.ratio = '-0.1' is out of range"),
        ("\"ratio\": 0.2", "\"ratio\": \"big\"", "scheduler.ratio must be a number"),
        ("\"ratio\": 0.2", "\"ratio\": 0.2, \"structureRatio\": 0.1", "sets both 'ratio' and 'structureRatio'"),
        ("\"version\": 1", "\"version\": 2", "version = '2' is not supported"),
        ("\"version\": 1,", "\"version\": 1, \"modle\": 3,", "unknown key 'modle' at modle for a recipe"),
        ("\"layers\": [3, 26]", "\"layers\": [26, 3]", "grouping.layers = '[26, 3]' must be [first, last]"),
        ("\"layers\": [3, 26]", "\"structures\": [\"heads\"]", "grouping.structures[0] = 'heads' is not a structure"),
        ("\"model\": \"models/m.gguf\",", "", "'model' is required"),
        ("{\"type\": \"uniform\", \"ratio\": 0.2}", "{\"ratio\": 0.2}", "scheduler needs a 'type'; registered scheduler plugins: uniform, global, iterative"),
        ("}}", "}, \"calibration\": {\"seqLen\": 1}}", "calibration.seqLen = '1' is out of range"),
        ("}}", "}, \"evaluation\": {\"datasets\": \"wikitext2\"}}", "evaluation.datasets must be an array of strings"),
        ("}}", "}, \"output\": {\"formats\": [\"onnx\"]}}", "output.formats[0] = 'onnx' is not an output format"),
        ("}}", "}, \"output\": {\"dtype\": \"int4\"}}", "output.dtype = 'int4' is not allowed"),
        ("}}", "}, \"output\": {\"type\": \"q3_k\"}}", "output.type = 'q3_k' is not allowed; choose one of: same-as-input, f32, f16, bf16, q8_0"),
        ("}}", "}, \"output\": {\"type\": \"f16\", \"dtype\": \"f16\"}}", "output sets both 'type' and 'dtype' (its earlier name)"),
        ("}}", "}, \"output\": {\"type\": \"q4_k_m\", \"formats\": [\"gguf\", \"safetensors\"]}}", "output.type = 'q4_k_m' is a GGUF quantization, but output.formats includes safetensors"),
        ("}}", "}", "is not valid JSON"),
    ])
    func badRecipesNameThePathAndTheFix(from: String, to: String, fragment: String) {
        let m = recipeError(bad(from, to))
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
    }

    @Test func missingModelFileIsCaughtBeforeLoading() throws {
        let m = preflightError(Self.good)
        #expect(m?.contains("model = 'models/m.gguf' does not exist") == true, "got: \(m ?? "no error")")
    }

    @Test func unknownEvaluationDatasetIsNamed() throws {
        var r = try Recipe.decode(Data(Self.good.utf8), plugins: .builtins())
        r.model = CLITests.repoRoot + "/Package.swift"  // any existing file gets past the model check
        r.evaluation.datasets = ["wikitext2", "wikitext3"]
        let e = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json").preflight() }
        #expect(e.code == .unknownName && e.message.contains("evaluation.datasets[1] = 'wikitext3'"), "\(e.message)")
    }

    @Test func listAndSchemaCoverEveryPlugin() throws {
        let items = RecipeCommands.listing(.builtins())
        #expect(Set(items.map(\.name)).isSuperset(of: ["decoder", "magnitude", "random", "wanda", "uniform", "global", "iterative"]))
        #expect(items.first { $0.name == "decoder" }?.aliases == ["llama"])
        let schema = RecipeCommands.schema(.builtins())
        let data = try JSONSerialization.data(withJSONObject: schema)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"wanda\"") && text.contains(#"["decoder","llama"]"#), "the schema takes the grouping's old name too")
    }
}
