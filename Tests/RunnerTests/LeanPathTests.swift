import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// A model read from its file when used (the lazy path) prunes exactly as the same model held whole
/// as f32 (the whole-model path): the same plan, the same perplexities, byte-identical outputs.
@Suite(.serialized) struct LeanPathTests {
    static func recipe(_ model: String, criterion: String, out: String, grouping: String = #"{"type": "llama"}"#,
                       fineTuner: String = "null") throws -> Recipe {
        let json = """
            {"version": 1, "model": "\(model)",
             "calibration": {"dataset": "wikitext2", "samples": 4, "seqLen": 64},
             "grouping": \(grouping), "criterion": \(criterion),
             "scheduler": {"type": "uniform", "ratio": 0.2}, "fineTuner": \(fineTuner),
             "evaluation": {"datasets": ["wikitext2"], "seqLen": 64, "maxWindows": 4},
             "output": {"dir": "\(out)", "formats": ["gguf"], "type": "f16"}}
            """
        return try Recipe.decode(Data(json.utf8), plugins: .builtins())
    }

    /// Runs the recipe lazily and resident (for a gradient criterion: channel sums block by block,
    /// and the full gradient); both must agree.
    static func compare(_ file: RequiredFile, criterion: String, grouping: String = #"{"type": "llama"}"#,
                        fineTuner: String = "null") throws {
        let dir = try temporaryDirectory("prune-lean")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var reports: [RunReport] = [], outputs: [Data] = []
        for resident in [false, true] {
            let out = dir + (resident ? "/resident" : "/lazy")
            let run = PruneRun(recipe: try recipe(file.path, criterion: criterion, out: out, grouping: grouping, fineTuner: fineTuner), recipePath: "r.json")
            run.residentWeights = resident
            run.log = { _ in }
            reports.append(try run.run())
            let gguf = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".gguf") })
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: out + "/" + gguf)))
        }
        let (lazy, whole) = (reports[0], reports[1])
        #expect(lazy.widthsAfter == whole.widthsAfter && lazy.paramsAfter == whole.paramsAfter)
        #expect(outputs[0] == outputs[1], "the pruned GGUF files differ (\(outputs[0].count) and \(outputs[1].count) bytes)")
        for (a, b) in [(lazy.pplBefore, whole.pplBefore), (lazy.pplAfter, whole.pplAfter)] {
            let a = try #require(a), b = try #require(b)
            #expect(abs(a - b) <= 1e-4 * b, "PPL \(a) (lazy) vs \(b) (whole model)")
        }
        #expect(lazy.fineTune?.losses == whole.fineTune?.losses)
        print("lean path, \(criterion)\(fineTuner == "null" ? "" : " + \(fineTuner)") on \(URL(fileURLWithPath: file.path).lastPathComponent): PPL \(lazy.pplBefore!) → \(lazy.pplAfter!) both ways, \(outputs[0].count)-byte GGUF identical")
    }

    @Test(.requires(.smolLM2)) func smolLM2PrunesTheSameBothWays() throws {
        try Self.compare(.smolLM2, criterion: #"{"type": "wanda"}"#)
        try Self.compare(.smolLM2, criterion: #"{"type": "magnitude"}"#)
    }

    @Test(.requires(.smolLM2)) func smolLM2TaylorScoresTheSameFromChannelSums() throws {
        for estimator in ["vector", "element1", "element2"] {
            try Self.compare(.smolLM2, criterion: #"{"type": "taylor", "estimator": "\#(estimator)", "microBatch": 2}"#)
        }
        // Hidden channels cut the tied embedding and every norm: their gradients come last.
        try Self.compare(.smolLM2, criterion: #"{"type": "taylor", "estimator": "element1"}"#,
                         grouping: #"{"type": "decoder", "structures": ["hidden-channels", "mlp-channels"]}"#)
    }

    /// LoRA trains over the weights read from the file and defers its merge into them (see
    /// `ParameterStore.update`); the whole-model path merges in place.
    static let lora = #"{"type": "lora", "steps": 2, "batch": 2, "microBatch": 1, "seqLen": 32, "dataset": "wikitext2", "learningRate": 0.0002}"#

    @Test(.requires(.smolLM2)) func smolLM2FineTunesTheSameBothWays() throws {
        try Self.compare(.smolLM2, criterion: #"{"type": "wanda"}"#, fineTuner: Self.lora)
    }

    @Test(.requires(.qwen25Coder05B)) func qwen25PrunesTheSameBothWays() throws {
        // The 0.5B model's f32 weights exceed the packed budget: LoRA holds one block at a time.
        try Self.compare(.qwen25Coder05B, criterion: #"{"type": "wanda"}"#, fineTuner: Self.lora)
        try Self.compare(.qwen25Coder05B, criterion: #"{"type": "taylor", "estimator": "element1"}"#)
    }
}
