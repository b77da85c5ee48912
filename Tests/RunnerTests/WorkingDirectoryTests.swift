import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// Recipes and the data folder are found from any working directory: relative paths in a recipe are
/// relative to the recipe file, the data sets are found from the executable or the source checkout.
@Suite struct WorkingDirectoryTests {
    @Test func relativePathsInARecipeAreRelativeToItsFolder() throws {
        let dir = try temporaryDirectory("prune-paths")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/recipes", withIntermediateDirectories: true)
        let json = """
            {"model": "../models/m.gguf", "grouping": {"type": "llama"}, "criterion": {"type": "magnitude"},
             "scheduler": {"type": "uniform", "ratio": 0.2},
             "calibration": {"dataset": "texts/cal.txt"}, "evaluation": {"datasets": ["wikitext2", "/abs/eval.txt", "e.txt"]},
             "output": {"dir": "../out/run"},
             "sweep": {"methods": [{"name": "m", "calibration": {"dataset": "c4"}}], "sparsities": [0.1], "cache": "cache"}}
            """
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/recipes/r.json"))
        let r = try Recipe.load(path: dir + "/recipes/r.json", plugins: .builtins())
        let root = URL(fileURLWithPath: dir).standardizedFileURL.path
        #expect(r.model == root + "/models/m.gguf")
        #expect(r.output.dir == root + "/out/run")
        #expect(r.calibration.dataset == root + "/recipes/texts/cal.txt")
        #expect(r.evaluation.datasets == ["wikitext2", "/abs/eval.txt", root + "/recipes/e.txt"])
        #expect(r.sweep?.cache == root + "/recipes/cache")
        let entry = try #require(r.sweep?.entries.first)
        #expect(entry.recipe.model == root + "/models/m.gguf" && entry.recipe.calibration.dataset == "c4")
        #expect(entry.recipe.output.dir == root + "/out/run")
    }

    @Test func aRecipeInTheWorkingDirectoryKeepsItsPaths() throws {
        #expect(Recipe.path("models/m.gguf", relativeTo: "") == "models/m.gguf")
        #expect(Recipe.path("models/m.gguf", relativeTo: ".") == "models/m.gguf")
        #expect(Recipe.path("/m.gguf", relativeTo: "/a") == "/m.gguf")
        #expect(Recipe.path("../m.gguf", relativeTo: "/a/b") == "/a/m.gguf")
    }

    @Test func fineTunerDatasetsAreRelativeToTheRecipe() throws {
        let tok = try BPETokenizer(tokens: ["a"], merges: [], tokenTypes: nil, preTokenizer: "gpt2", bosTokenId: nil, eosTokenId: nil)
        let ctx = FineTuneContext(tokenizer: tok, calibration: [], dataDir: nil,
                                  recipeFolder: "/r", log: { _ in })
        #expect(ctx.dataset("c4") == "c4" && ctx.dataset("ptb") == "ptb")
        #expect(ctx.dataset("t.jsonl") == "/r/t.jsonl" && ctx.dataset("/x/t.jsonl") == "/x/t.jsonl")
    }

    @Test func preflightNamesAMissingDataSetBeforeLoadingTheModel() throws {
        let dir = try temporaryDirectory("prune-nodata")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let json = """
            {"model": "\(CLITests.repoRoot)/Package.swift", "grouping": {"type": "llama"}, "criterion": {"type": "magnitude"},
             "scheduler": {"type": "uniform", "ratio": 0.2}, "evaluation": {"datasets": ["ptb"]}}
            """
        let r = try Recipe.decode(Data(json.utf8), plugins: .builtins())
        let c4 = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json", dataDir: dir).preflight() }
        #expect(c4.message.hasPrefix("recipe: calibration.dataset: dataset 'c4': 'c4/c4_1480docs_pfdecoding.jsonl' was not found; looked in '\(dir)' (--data-dir)"), "\(c4.message)")
        try FileManager.default.createDirectory(atPath: dir + "/c4", withIntermediateDirectories: true)
        try Data(#"{"text": "a"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/c4/c4_1480docs_pfdecoding.jsonl"))
        let ptb = try #require(throws: PruneError.self) { try PruneRun(recipe: r, recipePath: "r.json", dataDir: dir).preflight() }
        #expect(ptb.message.hasPrefix("recipe: evaluation.datasets: dataset 'ptb': 'ptb/ptb.valid.txt' was not found"), "\(ptb.message)")
    }

    /// The `prune` binary built beside the test bundle.
    static var prune: String? {
        guard let folder = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() else { return nil }
        let p = folder.appendingPathComponent("prune").path
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }

    /// Runs the built `prune` in `cwd`; returns its exit status and standard error. With
    /// `addressSpaceKB`, it runs under that `ulimit -v`.
    static func runPrune(_ args: [String], cwd: String, addressSpaceKB: Int? = nil) throws -> (status: Int32, stderr: String, stdout: String) {
        let p = Process()
        let binary = try #require(prune, "the prune executable is not beside the test bundle")
        if let kb = addressSpaceKB {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "ulimit -v \(kb) && exec \"$0\" \"$@\"", binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "PRUNE_DATA_DIR")
        p.environment = env
        let err = Pipe(), out = Pipe()
        p.standardError = err
        p.standardOutput = out
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile(), o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: e, as: UTF8.self), String(decoding: o, as: UTF8.self))
    }

    @Test func evalFindsTheDataFromAnotherWorkingDirectory() throws {
        let dir = try temporaryDirectory("prune-cwd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, _) = try tinyFiles(dir, contextLength: 64)
        let r = try Self.runPrune(["eval", "--model", model, "--dataset", "ptb", "--seq-len", "32", "--max-windows", "2", "--json"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(out?["windows"] as? Int == 2 && out?["dataset"] as? String == "ptb", "\(r.stdout)")
        let bad = try Self.runPrune(["eval", "--model", model, "--dataset", "ptb", "--data-dir", dir + "/none"], cwd: dir)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("'ptb/ptb.valid.txt' was not found; looked in '\(dir)/none' (--data-dir)"), "\(bad.stderr)")
    }

    @Test(.requires(.smolLM2), arguments: ["quickstart.json", "paper-table.json", "llm-pruner/taylor-element1-lora.json"])
    func exampleRecipesValidateFromAnotherWorkingDirectory(recipe: String) throws {
        let dir = try temporaryDirectory("prune-cwd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.runPrune(["validate", Repository.root + "/Examples/recipes/" + recipe], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("valid"), "\(r.stdout)")
    }
}
