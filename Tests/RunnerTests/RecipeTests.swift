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

    @Test(arguments: [
        // A duplicate key is refused (JSONDecoder would keep the first) with its path, line and column.
        ("\"ratio\": 0.2", "\"ratio\": 0.2, \"ratio\": 5", "recipe: duplicate key 'ratio' at scheduler.ratio (line 4, column 49); each key may appear once"),
        ("\"ratio\": 0.2", "\"ratio\" 0.2", "recipe is not valid JSON: line 4, column 43: expected ':' after the key 'ratio', found '0'"),
        ("\"norm\": \"l1\"}", "\"norm\": \"l1\"", "recipe is not valid JSON: line 4, column 49: expected ',' or '}' after the value of 'criterion', found the end of the input"),
        ("\"ratio\": 0.2", "\"ratio\": 1e400", "recipe: number '1e400' at scheduler.ratio (line 4, column 44) is too large for a 64-bit float"),
        ("}}", "}, \"calibration\": {\"samples\": 1e30}}", "calibration.samples must be an integer (a whole number from"),
        ("}}", "}, \"calibration\": {\"samples\": 2.5}}", "calibration.samples must be an integer"),
        // Paths are checked when the recipe is read, not when the file is opened after the work.
        ("}}", "}, \"output\": {\"dir\": \"out\\u0000x\"}}", "recipe: output.dir = 'out\\u{0}x' contains a NUL character (\\u0000), which no file path can hold; remove it"),
        ("}}", "}, \"output\": {\"dir\": \"out\u{0}x\"}}", "line 4, column 72: control character U+0000 inside a string"),
        ("}}", "}, \"output\": {\"dir\": \"\"}}", "recipe: output.dir = '' is empty; give a file or directory path"),
        ("\"models/m.gguf\"", "\"\"", "recipe: model = '' is empty"),
        ("\"models/m.gguf\"", "\"m\\u0000.gguf\"", "recipe: model = 'm\\u{0}.gguf' contains a NUL character"),
        ("}}", "}, \"calibration\": {\"dataset\": \"\"}}", "recipe: calibration.dataset = '' is empty"),
        ("}}", "}, \"evaluation\": {\"datasets\": [\"wikitext2\", \"a\\u0000b\"]}}", "recipe: evaluation.datasets[1] = 'a\\u{0}b' contains a NUL character"),
        ("}}", "}, \"sweep\": {\"methods\": [{\"name\": \"m\"}], \"sparsities\": [0.3], \"cache\": \"c\\u0000\"}}", "recipe: sweep.cache = 'c\\u{0}' contains a NUL character"),
        ("}}", "}, \"sweep\": {\"methods\": [{\"name\": \"m\"}], \"sparsities\": [0.3], \"cache\": \"\"}}", "recipe: sweep.cache = '' is empty"),
    ])
    func recipeFileErrorsNameLineColumnAndPath(from: String, to: String, message: String) {
        let m = recipeError(bad(from, to))
        #expect(m?.contains(message) == true, "got: \(m ?? "no error")")
    }

    @Test func theTopLevelMustBeAnObject() {
        let m = recipeError("[1, 2]")
        #expect(m?.contains("the top level must be a JSON object") == true, "got: \(m ?? "no error")")
    }

    /// A 10 MB value is quoted by its first hundred characters, with control characters escaped.
    @Test func longValuesAreCutInMessages() throws {
        let huge = String(repeating: "x", count: 10_000_000)
        let cases = [
            (bad("\"norm\": \"l1\"", "\"norm\": \"\\n\(huge)\""), "criterion.norm = '\\u{a}" + String(repeating: "x", count: 99) + "… (10000001 bytes)' is not allowed"),
            (bad("\"norm\": \"l1\"", "\"\(huge)\": 1"), "unknown key '" + String(repeating: "x", count: 100) + "… (10000000 bytes)' at criterion." + String(repeating: "x", count: 40) + "…"),
            (bad("}}", "}, \"output\": {\"formats\": [\"\(huge)\"]}}"), "output.formats[0] = '" + String(repeating: "x", count: 100) + "… (10000000 bytes)'"),
            (bad("}}", "}, \"evaluation\": {\"tasks\": [\"\(huge)\"]}}"), "evaluation.tasks[0] = '" + String(repeating: "x", count: 100) + "…"),
            (bad("\"models/m.gguf\"", "\"\(huge)\""), "model = '" + String(repeating: "x", count: 100) + "… (10000000 bytes)' is 10000000 bytes long; a path is at most 4096 bytes"),
            (bad("}}", "}, \"sweep\": {\"methods\": [{\"name\": \"m\"}, {\"name\": \"m\"}], \"sparsities\": [0.3], \"\(huge)\": 1}}"), "sweep." + String(repeating: "x", count: 40) + "… (10000000 bytes) is not a sweep key"),
            (bad("}}", "}, \"sweep\": {\"methods\": [{\"name\": \"\(huge)\"}, {\"name\": \"\(huge)\"}], \"sparsities\": [0.3]}}"), "sweep.methods[1].name = '" + String(repeating: "x", count: 100) + "… (10000000 bytes)' is used twice"),
        ]
        for (json, fragment) in cases {
            let m = try #require(recipeError(json))
            #expect(m.contains(fragment), "got: \(m.prefix(600))")
            #expect(m.count < 600, "message of \(m.count) characters: \(m.prefix(600))")
        }
    }

    @Test func everyExampleRecipeStillDecodes() throws {
        let folder = CLITests.repoRoot + "/Examples/recipes"
        let files = try FileManager.default.subpathsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count >= 10)
        for f in files {
            do {
                let r = try Recipe.load(path: folder + "/" + f, plugins: .builtins())
                _ = try r.resolvedJSON()
            } catch let e as PruneError where f == "custom-criterion.json" {
                // Its criterion is registered by Examples/CustomCriterion, not by the builtins.
                #expect(e.code == .unknownName && e.message.contains("weighted-variance"), "\(e.message)")
            } catch {
                Issue.record("\(f): \(error)")
            }
        }
    }

    /// An output directory below a regular file, or a file itself, is refused before any work,
    /// naming the path and where it came from (`output.dir` or `--output-dir`).
    @Test func unwritableOutputDirectoryIsRefusedAtPreflight() throws {
        let dir = try temporaryDirectory("prune-outdir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/plain-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        var r = try Recipe.decode(Data(Self.good.utf8), plugins: .builtins())

        r.output.dir = file + "/out/deeper"
        let below = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json").checkOutputDirectory() }
        #expect(below.code == .invalidArgument)
        #expect(below.message == "recipe: output.dir = '\(file)/out/deeper' is not a usable directory: '\(file)' above it is a file, not a directory; choose another directory or move the file")

        let itself = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json", outputDir: file).checkOutputDirectory() }
        #expect(itself.message.hasPrefix("'--output-dir' = '\(file)' is not a usable directory: it is a file, not a directory"), "\(itself.message)")

        // A missing directory is created with its parents; an existing one is probed and left empty.
        r.output.dir = dir + "/new/out"
        try PruneRun(recipe: r, recipePath: "r.json").checkOutputDirectory()
        try PruneRun(recipe: r, recipePath: "r.json").checkOutputDirectory()
        #expect(try FileManager.default.contentsOfDirectory(atPath: r.output.dir).isEmpty)

        if getuid() != 0 {  // root writes anywhere, so the permission case runs as a normal user only
            let locked = dir + "/locked"
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o500])
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: locked) }
            let e = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json", outputDir: locked).checkOutputDirectory() }
            #expect(e.code == .io && e.message.contains("'--output-dir' = '\(locked)' is not writable"), "\(e.message)")
            let sub = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json", outputDir: locked + "/sub").checkOutputDirectory() }
            #expect(sub.code == .io && sub.message.contains("cannot be created"), "\(sub.message)")
        }
    }

    @Test func sweepOutputAndCacheDirectoriesAreChecked() throws {
        let dir = try temporaryDirectory("prune-sweepdir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/plain-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let sweep = #"}, "output": {"dir": "OUT"}, "sweep": {"methods": [{"name": "m"}], "sparsities": [0.3], "cache": "CACHE"}}"#
        func comparison(out: String, cache: String) throws -> Comparison {
            let json = bad("}}", sweep.replacingOccurrences(of: "OUT", with: out).replacingOccurrences(of: "CACHE", with: cache))
            return try Comparison(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
        }
        try comparison(out: dir + "/out", cache: dir + "/cache").checkOutputDirectory()
        let out = try #require(throws: PruneError.self) { try comparison(out: file + "/out", cache: dir + "/cache").checkOutputDirectory() }
        #expect(out.message.hasPrefix("recipe: output.dir = '\(file)/out' is not a usable directory"), "\(out.message)")
        let cache = try #require(throws: PruneError.self) { try comparison(out: dir + "/out", cache: file + "/cache").checkOutputDirectory() }
        #expect(cache.message.hasPrefix("recipe: sweep.cache = '\(file)/cache' is not a usable directory"), "\(cache.message)")
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
        let properties = try #require(schema["properties"] as? [String: Any])
        #expect(Set(properties.keys) == Set(Recipe.topKeys), "the schema's top-level keys are the recipe's")
    }
}
