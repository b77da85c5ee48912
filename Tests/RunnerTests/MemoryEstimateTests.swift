import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// The memory preflight: an estimate of a recipe's peak from the model's config, checked against
/// `memory.budgetGB` (or the machine) before any work.
@Suite struct MemoryEstimateTests {
    static func run(criterion: String, memory: String = "", model: String = "m.gguf", fineTuner: String = "null",
                    scheduler: String = #"{"type": "uniform", "ratio": 0.2}"#) throws -> PruneRun {
        let json = """
            {"version": 1, "model": "\(model)", "calibration": {"samples": 32, "seqLen": 128},
             "grouping": {"type": "llama"}, "criterion": \(criterion), "fineTuner": \(fineTuner),
             "scheduler": \(scheduler)\(memory)}
            """
        return PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
    }

    /// Llama-2-7B's shapes with a 49,152-token vocabulary (bench/make_7b_gguf.py).
    static let llama7B = ModelConfig(vocabSize: 49152, hiddenSize: 4096, nLayers: 32, headDim: 128, nHead: Array(repeating: 32, count: 32),
                                     nKVHead: Array(repeating: 32, count: 32), ffnDim: Array(repeating: 11008, count: 32),
                                     ropeBase: 10000, rmsEps: 1e-5, contextLength: 4096, tiedEmbeddings: false)

    @Test func aSevenBillionModelFitsWithWandaAndBlockByBlockTaylor() throws {
        let wanda = try Self.run(criterion: #"{"type": "wanda"}"#).memoryEstimate(Self.llama7B)
        let taylor = try Self.run(criterion: #"{"type": "taylor", "estimator": "element1"}"#).memoryEstimate(Self.llama7B)
        #expect(wanda.total < 6_000_000_000 && taylor.total < 10_000_000_000, "\(wanda.total) \(taylor.total)")
        #expect(taylor.stage == "gradients block by block")
        // Mask mode's Taylor takes the whole gradient: the f32 weights and gradient (2 × 27 GB).
        let mask = try Self.run(criterion: #"{"type": "taylor", "estimator": "element1"}"#,
                                scheduler: #"{"type": "unstructured", "ratio": 0.5}"#).memoryEstimate(Self.llama7B)
        #expect(mask.total > 2 * Self.llama7B.f32Bytes && mask.stage == "gradients of the whole model")
    }

    /// LoRA holds one block's and the head's f32 weights at a time, and every layer's activations
    /// of one pass, which grow with microBatch × seqLen.
    @Test func loraOverASevenBillionModelHoldsOneBlockAtATime() throws {
        func lora(_ microBatch: Int) throws -> MemoryEstimate {
            try Self.run(criterion: #"{"type": "wanda"}"#,
                         fineTuner: #"{"type": "lora", "batch": 8, "microBatch": \#(microBatch), "seqLen": 256}"#).memoryEstimate(Self.llama7B)
        }
        let small = try lora(1), large = try lora(8)
        #expect(small.stage == "fine-tuning with 'lora'" && small.total < 10_000_000_000, "\(small.total)")
        #expect(small.parts.contains { $0.what.hasPrefix("one block's and the head's f32 weights") })
        #expect(large.total > small.total + 5_000_000_000, "\(large.total) vs \(small.total)")
    }

    /// Distillation adds the dense teacher (one block and the head at a time for 7B) and its
    /// logits for one pass: microBatch × seqLen × vocabulary floats.
    @Test func distillationCountsTheTeacherAndItsLogits() throws {
        func estimate(_ loss: String) throws -> MemoryEstimate {
            try Self.run(criterion: #"{"type": "wanda"}"#,
                         fineTuner: #"{"type": "lora", "batch": 8, "microBatch": 2, "seqLen": 256\#(loss)}"#).memoryEstimate(Self.llama7B)
        }
        let plain = try estimate(""), kl = try estimate(#", "loss": {"type": "kl"}"#)
        let logits = try #require(kl.parts.first { $0.what.hasPrefix("teacher logits") })
        #expect(logits.bytes == 4 * 2 * 256 * 49152)
        #expect(kl.parts.contains { $0.what == "the dense teacher's block and head in f32" })
        #expect(!plain.parts.contains { $0.what.contains("teacher") } && kl.total > plain.total + logits.bytes, "\(kl.total) vs \(plain.total)")
    }

    /// OBS holds one layer's Hessians in Double: for the 7B shapes' ffn_down, 11008² values.
    @Test func obsCompensationHoldsOneLayersHessians() throws {
        let run = try Self.run(criterion: #"{"type": "wanda"}"#, memory: #", "compensator": {"type": "obs"}"#)
        let e = run.memoryEstimate(Self.llama7B)
        let hessians = try #require(e.parts.first { $0.what.hasPrefix("Hessians") })
        #expect(e.stage == "compensation with 'obs'" && hessians.bytes == 3 * 8 * 11008 * 11008 && e.total < 10_000_000_000, "\(e.total)")
    }

    @Test func aBudgetTooSmallIsRefusedNamingTheSetting() throws {
        let run = try Self.run(criterion: #"{"type": "taylor", "estimator": "element1"}"#, memory: #", "memory": {"budgetGB": 4}"#)
        let e = try #require(throws: PruneError.self) { try run.checkMemory(Self.llama7B) }
        #expect(e.message.contains("more than memory.budgetGB = 4 (3.73 GiB)") && e.message.contains("calibration.samples"), "\(e.message)")
        let fits = try Self.run(criterion: #"{"type": "wanda"}"#, memory: #", "memory": {"budgetGB": 8}"#)
        try fits.checkMemory(Self.llama7B)
    }

    @Test func theBudgetIsCheckedWhenTheRecipeIsRead() throws {
        for (bad, message) in [(#"{"budgetGB": 0}"#, "memory.budgetGB = '0.0' is outside"), (#"{"budget": 4}"#, "budget")] {
            let e = try #require(throws: PruneError.self) { try Self.run(criterion: #"{"type": "wanda"}"#, memory: ", \"memory\": \(bad)") }
            #expect(e.message.contains(message), "\(e.message)")
        }
    }
}
