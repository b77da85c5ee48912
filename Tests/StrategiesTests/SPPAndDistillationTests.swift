import Foundation
import Testing
@testable import PruneFramework
@testable import Strategies

/// The `spp` fine-tuner and the `loss` key of the adapter fine-tuners.
@Suite struct SPPAndDistillationTests {
    func decode<T: Decodable>(_ t: T.Type, _ json: String) throws -> T { try JSONDecoder().decode(T.self, from: Data(json.utf8)) }

    @Test func lossKeyAndErrors() throws {
        #expect(try decode(LoRAFineTuner.self, "{}").distillation == nil)
        #expect(try decode(LoRAFineTuner.self, #"{"loss": {"type": "ce"}}"#).distillation == nil)
        let kl = try decode(LoRAFineTuner.self, #"{"loss": {"type": "kl", "temperature": 2}}"#)
        #expect(kl.distillation == Distillation(temperature: 2, alpha: 0.5) && kl.settings.distillation == kl.distillation)
        #expect(try decode(SAAPGroupFineTuner.self, #"{"loss": {"type": "kl", "alpha": 0.5}}"#).distillation == Distillation(temperature: 1, alpha: 0.5))
        #expect(try decode(SPPFineTuner.self, #"{"loss": {"type": "kl"}}"#).distillation != nil)
        for (json, says) in [(#"{"loss": {"type": "mse"}}"#, "loss.type = 'mse' is not allowed"),
                             (#"{"loss": {}}"#, "loss.type is missing"),
                             (#"{"loss": {"type": "kl", "temprature": 2}}"#, "unknown key 'temprature' at loss.temprature"),
                             (#"{"loss": {"type": "ce", "alpha": 0.5}}"#, "unknown key 'alpha' at loss.alpha for loss 'ce'"),
                             (#"{"loss": {"type": "kl", "alpha": 1.5}}"#, "loss.alpha = '1.5' is out of range"),
                             (#"{"loss": {"type": "kl", "temperature": 0}}"#, "loss.temperature = '0.0' is out of range"),
                             (#"{"loss": "kl"}"#, "loss must be an object such as")] {
            do {
                _ = try decode(LoRAFineTuner.self, json)
                Issue.record("\(json) was accepted")
            } catch let e as PruneError {
                #expect(e.message.contains(says), "\(json): \(e.message)")
            }
        }
    }

    /// A recipe without `loss` encodes without it (sweep caches keyed by the resolved recipe stay valid).
    @Test func encodingKeepsOldRecipesUnchanged() throws {
        let plain = String(decoding: try JSONEncoder().encode(try decode(LoRAFineTuner.self, "{}")), as: UTF8.self)
        #expect(!plain.contains("loss"))
        let kl = try JSONEncoder().encode(try decode(SPPFineTuner.self, #"{"loss": {"type": "kl", "temperature": 2}}"#))
        let back = try JSONDecoder().decode(SPPFineTuner.self, from: kl)
        #expect(back.distillation == Distillation(temperature: 2, alpha: 0.5) && back.rank == 16 && back.alpha == 32 && back.learningRate == 3e-4)
    }

    /// Training SPP on a model with half its weights zero: the loss falls, only the targets change,
    /// and every zero of every tensor is still exactly zero after the merge.
    @Test func sppTrainingKeepsEveryZero() throws {
        let model = try tinyModel(layers: 2)
        let buf = model.params.buffer
        for e in model.params.entries where e.shape.count == 2 && e.name != TensorNames.tokenEmbedding {
            for i in e.offset..<(e.offset + e.count) where (i &* 2_654_435_761) % 5 < 3 { buf[i] = 0 }
        }
        let before = Array(buf)
        let data = (0..<4).map { tokens(12, vocab: 41, seed: UInt64($0 + 10)) }
        let nll0 = try model.nll(tokens: Array(data.joined()), batch: 4, seqLen: 12).mean
        var ft = SPPFineTuner()
        ft.steps = 60
        ft.microBatch = 3
        ft.learningRate = 5e-2
        ft.warmupSteps = 2
        ft.dropout = 0.1
        ft.rank = 3
        let r = try LoRATraining.train(model, sequences: data, settings: ft.settings, layers: [0, 1])
        #expect(r.losses.last! < r.losses.first! - 0.2, "loss \(r.losses.first!) → \(r.losses.last!)")
        let nll1 = try model.nll(tokens: Array(data.joined()), batch: 4, seqLen: 12).mean
        #expect(nll1 < nll0 - 0.1, "NLL \(nll0) → \(nll1)")
        var changed = Set<String>()
        for e in model.params.entries {
            for i in e.offset..<(e.offset + e.count) {
                #expect((before[i] == 0) == (buf[i] == 0), "\(e.name)[\(i - e.offset)]: \(before[i]) → \(buf[i])")
                if before[i] != buf[i] { changed.insert(e.name) }
            }
        }
        let targets = (0..<2).flatMap { l in LoRASettings.targetNames.map { LoRASettings.tensor($0, layer: l) } }
        #expect(changed == Set(targets))
        // Rows 0..<3 of layer 0's ffn_down: 16 rows in 3 groups; A has 3 × 20 values, c 16.
        #expect(r.trainableParameters == targets.reduce(0) { n, t in
            let s = model.params.entry(t)!.shape
            return n + 3 * s[1] + s[0]
        })
    }

    /// Distilling from a teacher lowers the KL divergence between the two models on the training data.
    @Test func distillationMovesTheStudentToTheTeacher() throws {
        let student = try tinyModel(layers: 2, seed: 1), teacher = try tinyModel(layers: 2, seed: 2)
        let data = (0..<4).map { tokens(12, vocab: 41, seed: UInt64($0 + 30)) }
        func kl() throws -> Double {
            let all = Array(data.joined())
            let zs = try student.logits(tokens: all, batch: 4, seqLen: 12), zt = try teacher.logits(tokens: all, batch: 4, seqLen: 12)
            var sum = 0.0
            for r in 0..<(4 * 12) {
                var g = Array(zs[(r * 41)..<((r + 1) * 41)])
                sum += Array(zt[(r * 41)..<((r + 1) * 41)]).withUnsafeBufferPointer { t in
                    distillationBackward(&g, teacher: t.baseAddress!, count: 41, target: 0, settings: Distillation(), scale: 1).kl
                }
            }
            return sum / 48
        }
        let kl0 = try kl()
        var s = LoRASettings()
        s.steps = 40
        s.learningRate = 5e-2
        s.warmupSteps = 2
        s.dropout = 0
        s.distillation = Distillation(temperature: 1, alpha: 1)
        _ = try LoRATraining.train(student, sequences: data, settings: s, layers: [0, 1], teacher: teacher)
        let kl1 = try kl()
        #expect(kl1 < 0.7 * kl0, "KL \(kl0) → \(kl1)")
    }

    @Test func teacherMustMatchTheLoss() throws {
        let model = try tinyModel(layers: 1)
        var s = LoRASettings()
        s.distillation = Distillation()
        let missing = try #require(throws: PruneError.self) { try LoRATraining.train(model, sequences: [[1, 2, 3]], settings: s, layers: [0]) }
        #expect(missing.message.contains("needs a teacher model"), "\(missing.message)")
        let other = try Transformer(randomWith: ModelConfig(vocabSize: 7, hiddenSize: 16, nLayers: 1, headDim: 4, nHead: [2], nKVHead: [1], ffnDim: [8]), seed: 3)
        let vocab = try #require(throws: PruneError.self) {
            try LoRATraining.train(model, sequences: [[1, 2, 3]], settings: s, layers: [0], teacher: other)
        }
        #expect(vocab.message.contains("teacher's vocabulary (7) is not the model's (41)"), "\(vocab.message)")
        let context = FineTuneContext(tokenizer: try BPETokenizer(tokens: ["a"], merges: [], tokenTypes: nil, preTokenizer: "gpt2", bosTokenId: nil, eosTokenId: nil), calibration: [], dataDir: nil) { _ in }
        var ft = LoRAFineTuner()
        ft.loss = .kl()
        let none = try #require(throws: PruneError.self) { try ft.teacher(context, for: "lora") }
        #expect(none.message.contains("fineTuner 'lora': loss 'kl' distils from the dense model"), "\(none.message)")
    }
}
