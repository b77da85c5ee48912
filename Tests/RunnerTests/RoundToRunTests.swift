import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// `roundTo` from a recipe: checked against the model before any work, and reported next to the target.
@Suite struct RoundToRunTests {
    func recipe(_ model: String, _ text: String, out: String, roundTo: Int) throws -> Recipe {
        let json = """
            {"version": 1, "model": "\(model)",
             "calibration": {"dataset": "\(text)", "samples": 4, "seqLen": 16, "seed": 1},
             "grouping": {"type": "decoder", "structures": ["mlp-channels"]}, "criterion": {"type": "magnitude"},
             "scheduler": {"type": "uniform", "ratio": 0.0956, "roundTo": \(roundTo)},
             "evaluation": {"datasets": ["\(text)"], "seqLen": 16, "maxWindows": 2},
             "output": {"dir": "\(out)", "formats": []}}
            """
        return try Recipe.decode(Data(json.utf8), plugins: .builtins())
    }

    @Test func theReportGivesTheTargetAndTheRoundedWidths() throws {
        let dir = try temporaryDirectory("prune-roundto")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)
        // The tiny model's MLPs have 24 channels: 32 is caught before the model is read.
        let wide = PruneRun(recipe: try recipe(model, text, out: dir + "/wide", roundTo: 32), recipePath: "r.json")
        let e = try #require(throws: PruneError.self) { try wide.preflight() }
        #expect(e.message.contains("scheduler.roundTo = '32' exceeds the model's widest MLP (24 channels)"), "\(e.message)")
        // 24 in multiples of 24: no MLP channel can go, so the target is out of reach, also before any work.
        let whole = PruneRun(recipe: try recipe(model, text, out: dir + "/whole", roundTo: 24), recipePath: "r.json")
        let w = try #require(throws: PruneError.self) { try whole.preflight() }
        #expect(w.message.contains("scheduler.roundTo = '24' cannot meet ratio 0.10: with widths in multiples of 24 the grouping's structures hold at most 0.00%"), "\(w.message)")
        let run = PruneRun(recipe: try recipe(model, text, out: dir + "/out", roundTo: 8), recipePath: "r.json")
        run.log = { _ in }
        let report = try run.run()
        #expect(report.widthsAfter.ffnDim == [16, 16], "\(report.widthsAfter.ffnDim)")
        #expect(report.targetRatio == 0.0956 && report.roundTo == 8)
        let md = try String(contentsOfFile: dir + "/out/report.md", encoding: .utf8)
        #expect(md.contains("(target: 9.56% of all parameters, MLP widths in multiples of 8)"), "\(md)")
    }
}
