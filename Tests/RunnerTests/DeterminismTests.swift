import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// The same recipe gives byte-identical files twice (reports differ only in their timings).
@Suite struct DeterminismTests {
    @Test func theSameRecipeWritesTheSameBytesTwice() throws {
        let dir = try temporaryDirectory("prune-determinism")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)
        func run(_ out: String) throws {
            let json = """
                {"version": 1, "model": "\(model)",
                 "calibration": {"dataset": "\(text)", "samples": 4, "seqLen": 16, "seed": 3},
                 "grouping": {"type": "decoder", "structures": ["kv-groups", "mlp-channels"]}, "criterion": {"type": "taylor"},
                 "scheduler": {"type": "global", "ratio": 0.3},
                 "fineTuner": {"type": "lora", "steps": 3, "rank": 2, "seqLen": 16, "dataset": "\(text)"},
                 "evaluation": {"datasets": ["\(text)"], "seqLen": 16, "maxWindows": 2},
                 "output": {"dir": "\(out)", "formats": ["gguf", "safetensors"], "type": "f16"}}
                """
            let r = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
            r.log = { _ in }
            try r.run()
        }
        // Into the same folder, which the resolved recipe names: the first run's files are moved aside.
        try run(dir + "/out")
        try FileManager.default.moveItem(atPath: dir + "/out", toPath: dir + "/a")
        try run(dir + "/out")
        try FileManager.default.moveItem(atPath: dir + "/out", toPath: dir + "/b")
        let files = ["tiny.pruned.f16.gguf", "safetensors/model.safetensors", "safetensors/config.json", "safetensors/tokenizer.json",
                     "recipe.resolved.json", "sparsity.svg", "finetune.svg"]
        for f in files {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/" + f)), b = try Data(contentsOf: URL(fileURLWithPath: dir + "/b/" + f))
            #expect(!a.isEmpty && a == b, "\(f) differs between two runs of the same recipe")
        }
    }
}
