import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// `calibration.sequential` with a structure scheduler: each layer scored on the pruned layers'
/// outputs, with the dense plan's counts; checked before any work.
@Suite struct SequentialRunTests {
    static func json(_ model: String, _ text: String, out: String, criterion: String = #"{"type": "wanda"}"#,
                     structures: String = #""kv-groups", "mlp-channels""#, sequential: Bool = true) -> String {
        """
        {"version": 1, "model": "\(model)", "calibration": {"dataset": "\(text)", "samples": 4, "seqLen": 16, "sequential": \(sequential)},
         "grouping": {"type": "decoder", "structures": [\(structures)]}, "criterion": \(criterion),
         "scheduler": {"type": "uniform", "ratio": 0.2}, "evaluation": {"datasets": ["\(text)"], "seqLen": 16, "maxWindows": 2},
         "output": {"dir": "\(out)", "formats": ["gguf"], "type": "f32"}}
        """
    }

    @Test func gradientCriteriaAndGroupsAcrossLayersAreRefusedBeforeWork() throws {
        let dir = try temporaryDirectory("prune-seq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)
        let taylor = preflightError(Self.json(model, text, out: dir + "/o", criterion: #"{"type": "taylor"}"#))
        #expect(taylor?.contains("criterion 'taylor' reads gradients of the whole model") == true, "\(taylor ?? "no error")")
        let hidden = preflightError(Self.json(model, text, out: dir + "/o", structures: #""hidden-channels""#))
        #expect(hidden?.contains("spans") == true && hidden?.contains("calibration.sequential") == true, "\(hidden ?? "no error")")
        #expect(preflightError(Self.json(model, text, out: dir + "/o")) == nil)
    }

    @Test func aSequentialRunKeepsTheDensePlansWidths() throws {
        let dir = try temporaryDirectory("prune-seq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, text) = try tinyFiles(dir)
        var reports: [RunReport] = []
        for sequential in [false, true] {
            let recipe = try Recipe.decode(Data(Self.json(model, text, out: dir + "/\(sequential)", sequential: sequential).utf8), plugins: .builtins())
            let run = PruneRun(recipe: recipe, recipePath: "r.json")
            run.log = { _ in }
            reports.append(try run.run())
        }
        #expect(reports[0].widthsAfter == reports[1].widthsAfter && reports[0].paramsAfter < reports[0].paramsBefore)
        #expect(reports[1].stages.contains { $0.name.hasPrefix("score layer by layer") })
        #expect(reports[1].pplAfter?.isFinite == true)
    }
}
