import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// A recipe's `compensator` runs between the plan and the surgery.
@Suite(.serialized) struct CompensationRunTests {
    static func json(_ model: String, out: String, compensator: String, samples: Int = 32, windows: Int = 8) -> String {
        """
        {"version": 1, "model": "\(model)", "calibration": {"dataset": "c4", "samples": \(samples), "seqLen": 128},
         "grouping": {"type": "decoder", "structures": ["kv-groups", "mlp-channels"], "layers": [3, 26]},
         "criterion": {"type": "wanda"}, "scheduler": {"type": "uniform", "ratio": 0.2, "roundTo": 32},
         "compensator": \(compensator),
         "evaluation": {"datasets": ["wikitext2"], "seqLen": 128, "maxWindows": \(windows)},
         "output": {"dir": "\(out)", "formats": ["gguf"], "type": "f16"}}
        """
    }

    /// The quick-start's cut with 4,096 calibration tokens (more than the 1,536 inputs of
    /// ffn_down): OBS lowers the perplexity, keeps the plan, and the model stays of the cut shape.
    @Test(.requires(.smolLM2)) func obsLowersSmolLM2sPerplexityAfterWanda() throws {
        let dir = try temporaryDirectory("prune-obs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var reports: [RunReport] = []
        for (name, compensator) in [("plain", "null"), ("obs", #"{"type": "obs"}"#)] {
            let json = Self.json(RequiredFile.smolLM2.path, out: dir + "/" + name, compensator: compensator)
            let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
            var lines: [String] = []
            run.log = { lines.append($0) }
            reports.append(try run.run())
            if name == "obs" { #expect(lines.contains { $0.contains("OBS: updated the kept columns of 48 tensors in 24 layers") }) }
        }
        let (plain, obs) = (reports[0], reports[1])
        #expect(plain.widthsAfter == obs.widthsAfter && plain.paramsAfter == obs.paramsAfter)
        let (a, b) = (try #require(plain.pplAfter), try #require(obs.pplAfter))
        #expect(b < 0.95 * a, "PPL after: wanda \(a), wanda + obs \(b)")
        print("compensation: wanda \(a) → wanda + obs \(b) (SmolLM2, 32 × 128 C4 calibration tokens, 8 windows)")
    }
}
