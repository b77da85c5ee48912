import Foundation
import Testing
@testable import PruneFramework
@testable import Strategies

@Suite struct LoRAFineTunerTests {
    func decode(_ json: String) throws -> LoRAFineTuner { try JSONDecoder().decode(LoRAFineTuner.self, from: Data(json.utf8)) }

    @Test func defaultsAndRecipeErrors() throws {
        let d = try decode("{}")
        #expect(d.rank == 8 && d.alpha == 16 && d.steps == 200 && d.batch == 4 && d.seqLen == 256 && d.dataset == "c4")
        #expect(d.targets == ["q", "k", "v", "o", "gate", "up", "down"])
        for (json, says) in [(#"{"rnak": 4}"#, "rnak"), (#"{"targets": ["q", "x"]}"#, "targets[1]"),
                             (#"{"dropout": 1}"#, "dropout"), (#"{"rank": 0}"#, "rank"), (#"{"layers": [3, 1]}"#, "layers"),
                             (#"{"targets": []}"#, "targets")] {
            do {
                _ = try decode(json)
                Issue.record("\(json) was accepted")
            } catch let e as PruneError {
                #expect(e.message.contains(says), "\(e.message)")
            }
        }
    }

    @Test func learningRateWarmsUpThenDecaysToZero() {
        var s = LoRASettings()
        s.steps = 110
        s.warmupSteps = 10
        s.learningRate = 1e-3
        #expect(abs(s.learningRate(at: 0) - 1e-4) < 1e-12)
        #expect(abs(s.learningRate(at: 9) - 1e-3) < 1e-12)
        #expect(abs(s.learningRate(at: 10) - 1e-3) < 1e-12)
        #expect(abs(s.learningRate(at: 60) - 5e-4) < 1e-9)
        #expect(s.learningRate(at: 109) < 1e-6)
    }

    /// Training lowers the loss on the data it sees, only adapted weights change, and merging leaves a
    /// model of the same layout whose NLL matches the adapted one.
    @Test func trainsAdaptersOnlyAndMerges() throws {
        let model = try tinyModel(layers: 2)
        let before = Array(model.params.buffer)
        let data = (0..<4).map { tokens(12, vocab: 41, seed: UInt64($0 + 10)) }
        let nll0 = try model.nll(tokens: Array(data.joined()), batch: 4, seqLen: 12).mean
        var s = LoRASettings()
        s.rank = 4
        s.steps = 60
        s.batch = 4
        s.microBatch = 3
        s.learningRate = 5e-2
        s.warmupSteps = 2
        s.dropout = 0
        s.targets = ["q", "v", "down"]
        var steps: [Int] = []
        let r = try LoRATraining.train(model, sequences: data, settings: s, layers: [0, 1]) { steps.append($0.step) }
        #expect(steps == Array(1...60))
        #expect(r.losses.count == 60 && r.tokens == 60 * 4 * 12)
        // Layer 0: q 24×16, v 12×16, down 16×20; layer 1: q 24×16, v 12×16, down 16×24.
        #expect(r.trainableParameters == 4 * (16 + 24) * 2 + 4 * (16 + 12) * 2 + 4 * (20 + 16) + 4 * (24 + 16))
        #expect(r.losses.last! < r.losses.first! - 0.4, "loss \(r.losses.first!) → \(r.losses.last!)")
        let nll1 = try model.nll(tokens: Array(data.joined()), batch: 4, seqLen: 12).mean
        #expect(nll1 < nll0 - 0.1, "NLL \(nll0) → \(nll1)")
        #expect(model.params.entries.map(\.name) == TensorNames.layout(for: model.config).map(\.name))
        let changed = Set(model.params.entries.filter { e in
            (e.offset..<(e.offset + e.count)).contains { model.params.buffer[$0] != before[$0] }
        }.map(\.name))
        #expect(changed == [TensorNames.attnQ(0), TensorNames.attnV(0), TensorNames.ffnDown(0),
                             TensorNames.attnQ(1), TensorNames.attnV(1), TensorNames.ffnDown(1)])
    }

    @Test func rejectsBadTrainingInput() throws {
        let model = try tinyModel(layers: 2)
        let none = try #require(throws: PruneError.self) { try LoRATraining.train(model, sequences: [], settings: LoRASettings(), layers: [0]) }
        #expect(none.message.contains("no training sequences of ≥ 2 tokens"), "\(none.message)")
        let ragged = try #require(throws: PruneError.self) {
            try LoRATraining.train(model, sequences: [[1, 2, 3], [1, 2]], settings: LoRASettings(), layers: [0])
        }
        #expect(ragged.code == .shapeMismatch && ragged.message.contains("sequence 1 has 2 tokens, the first has 3"), "\(ragged.message)")
        let layer = try #require(throws: PruneError.self) { try LoRATraining.train(model, sequences: [[1, 2, 3]], settings: LoRASettings(), layers: [5]) }
        #expect(layer.code == .outOfRange && layer.message.contains("layer '5'"), "\(layer.message)")
    }
}
