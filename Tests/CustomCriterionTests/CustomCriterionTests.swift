import Foundation
import Testing
@testable import CustomCriterion
@testable import PruneFramework
@testable import Runner

@Suite struct CustomCriterionTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    @Test func theExampleRecipeNamesTheRegisteredCriterion() throws {
        let plugins = PluginSet.builtins()
        let e = try #require(throws: PruneError.self) { try Recipe.load(path: Self.root + "/Examples/recipes/custom-criterion.json", plugins: plugins) }
        #expect(e.code == .unknownName && e.message.contains("criterion.type = 'weighted-variance'"), "\(e.message)")
        registerExamplePlugins(plugins)
        let r = try Recipe.load(path: Self.root + "/Examples/recipes/custom-criterion.json", plugins: plugins)
        #expect(type(of: r.criterion).name == "weighted-variance")
    }

    @Test func itScoresByWeightedInputVariance() throws {
        let c = ModelConfig(vocabSize: 11, hiddenSize: 8, nLayers: 1, headDim: 4, nHead: [2], nKVHead: [1], ffnDim: [6], contextLength: 16)
        let model = try Transformer(randomWith: c, seed: 2)
        let stats = try Calibration.statistics(model: model, sequences: [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
        let plugins = PluginSet.builtins()
        registerExamplePlugins(plugins)
        let json = #"{"version": 1, "model": "m", "grouping": {"type": "llama", "structures": ["mlp-channels"]}, "criterion": {"type": "weighted-variance", "scale": 2}, "scheduler": {"type": "uniform"}}"#
        let r = try Recipe.decode(Data(json.utf8), plugins: plugins)
        let group = try r.grouping.groups(for: model)[0]
        let s = try r.criterion.scores(for: group, context: ScoringContext(model: model, statistics: stats, seed: 0))
        // Unit 0 by hand: gate row 0 and up row 0 against Var(mlp input), down column 0 against Var(intermediate).
        let vin = stats.input(of: TensorNames.ffnGate(0))!.variances, vmid = stats.input(of: TensorNames.ffnDown(0))!.variances
        let g = model.params.view(TensorNames.ffnGate(0)), u = model.params.view(TensorNames.ffnUp(0)), d = model.params.view(TensorNames.ffnDown(0))
        var want = 0.0
        for j in 0..<8 { want += Double(g[j] * g[j] + u[j] * u[j]) * vin[j] }
        for r in 0..<8 { want += Double(d[r * 6] * d[r * 6]) * vmid[0] }
        #expect(s.count == 6 && abs(s[0] - 2 * want) < 1e-6 * max(1, want))
    }
}
