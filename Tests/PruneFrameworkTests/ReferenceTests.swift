import Foundation
import Testing
@testable import PruneFramework

/// SmolLM2-135M against llama.cpp's outputs in shared/reference (forward pass on reference token ids).
@Suite(.enabled(if: TestPaths.modelPresent, TestPaths.modelMissingReason), .serialized)
struct ReferenceTests {
    static let refDir = TestPaths.shared + "/reference"

    func windows() throws -> [Int32] {
        let ids = try TestPaths.readInt32s(Self.refDir + "/smollm2_wikitext2_test_tokens.i32")
        #expect(ids.count == 304_978)
        return Array(ids[0..<(4 * 512)])
    }

    @Test func meanNLLOfFourWindowsMatchesLlamaCpp() throws {
        let model = try #require(SharedModel.model)
        let r = try model.nll(tokens: try windows(), batch: 4, seqLen: 512)
        #expect(r.count == 4 * 511)
        let want = 3.43568
        print("mean NLL \(r.mean) (llama.cpp \(want)), PPL \(exp(r.mean))")
        #expect(abs(r.mean - want) / want < 0.005)
    }

    @Test func logitsAndTop1OfWindow0MatchLlamaCpp() throws {
        let model = try #require(SharedModel.model)
        let w0 = Array(try windows()[0..<512])
        let V = model.config.vocabSize
        let lg = try model.logits(tokens: w0, batch: 1, seqLen: 512)
        let ref = try TestPaths.readFloats(Self.refDir + "/smollm2_llamacpp_window0_logits_pos0-7.f32")
        #expect(ref.count == 8 * V)
        var maxDiff: Float = 0
        for i in 0..<(8 * V) { maxDiff = max(maxDiff, abs(lg[i] - ref[i])) }
        print("max |Δlogit| at positions 0-7: \(maxDiff)")
        #expect(maxDiff < 0.05)

        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: Self.refDir + "/smollm2_llamacpp.json"))) as? [String: Any]
        let top = try #require(json?["window0_top10"] as? [[String: Any]])
        var same = 0
        for entry in top {
            let pos = try #require(entry["position"] as? Int), ids = try #require(entry["ids"] as? [Int])
            let row = lg[(pos * V)..<((pos + 1) * V)]
            let mine = row.indices.max { row[$0] < row[$1] }! - pos * V
            if mine == ids[0] { same += 1 }
        }
        print("top-1 agreement: \(same)/\(top.count)")
        #expect(top.count == 512)
        #expect(Double(same) >= 0.99 * Double(top.count))
    }
}
