import Foundation
import Testing
@testable import PruneFramework

/// Channel sums computed block by block equal those of the full gradient (and Fisher), exactly:
/// the layer-wise pass adds every gradient in the whole-model backward's order.
@Suite struct ChannelSumsTests {
    static func salience(_ w: Float, _ g: Float, _ f: Float) -> Double {
        Double(g) * Double(w) - 0.5 * Double(f) * Double(w) * Double(w)
    }

    @Test(arguments: [(false, false, true), (true, false, true), (false, true, false), (true, true, false)])
    func blockByBlockEqualsTheFullGradient(fisher: Bool, absolute: Bool, tied: Bool) throws {
        var c = tinyConfig(layers: 3)
        c.tiedEmbeddings = tied
        let model = try Transformer(randomWith: c, seed: 11)
        var rng = SplitMix64(seed: 5)
        let sequences = (0..<5).map { _ in (0..<9).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        let names = Set(model.params.entries.map(\.name))
        let lean = try model.channelSums(sequences: sequences, microBatch: 2, fisher: fisher, tensors: names,
                                         absolute: absolute, salience: Self.salience)
        let full = try model.gradients(sequences: sequences, microBatch: 2, fisher: fisher)
        var expected = ChannelSums(absolute: absolute)
        for e in model.params.entries {
            expected.add(e.name, shape: e.shape, w: model.params.pointer(e.name), g: full.gradients.pointer(e.name),
                         f: full.fisher?.pointer(e.name), salience: Self.salience)
        }
        #expect(lean.loss.sum == full.loss.sum && lean.loss.count == full.loss.count)
        for e in model.params.entries {
            #expect(lean.rows[e.name] == expected.rows[e.name], "\(e.name) rows")
            #expect(lean.cols[e.name] == expected.cols[e.name], "\(e.name) cols")
        }
        let slice = TensorSlice(TensorNames.ffnDown(1), axis: 1, 2..<5)
        #expect(lean.value(of: slice) == expected.value(of: slice) && lean.value(of: slice) > 0)
    }

    @Test func onlyTheAskedTensorsGetSums() throws {
        let model = try Transformer(randomWith: tinyConfig(), seed: 2)
        let sums = try model.channelSums(sequences: [[1, 2, 3, 4]], tensors: [TensorNames.attnQ(0)], absolute: true,
                                         salience: Self.salience)
        #expect(Set(sums.rows.keys) == [TensorNames.attnQ(0)])
        #expect(sums.value(of: TensorSlice(TensorNames.ffnUp(0), axis: 0, 0..<3)) == 0)
    }
}
