import Foundation
import Testing
@testable import PruneFramework

/// Canonical tensor names are built and parsed in one place, and the coupled structures take their
/// slices (biases included) from the tensor roles.
@Suite struct TensorNamesTests {
    @Test(arguments: [("blk.3.ffn_up.weight", 3, TensorRole.ffnUp), ("blk.0.attn_q.bias", 0, .attnQBias),
                      ("blk.12.attn_output.weight", 12, .attnOutput), ("blk.2.attn_output.bias", 2, .attnOutputBias),
                      ("blk.7.ffn_down.bias", 7, .ffnDownBias)])
    func perLayerNamesRoundTrip(name: String, layer: Int, role: TensorRole) throws {
        let p = try #require(TensorNames.parse(name))
        #expect(p.layer == layer && p.role == role)
        #expect(TensorNames.name(role, layer) == name)
    }

    @Test func globalAndForeignNames() {
        #expect(TensorNames.parse("token_embd.weight")?.role == .tokenEmbedding)
        #expect(TensorNames.parse("token_embd.weight")?.layer == nil)
        for bad in ["blk.x.attn_q.weight", "blk.01.attn_q.weight", "blk.-1.attn_q.weight", "blk.3.attn_qq.weight",
                    "blk.3.token_embd.weight", "attn_q.weight", "model.layers.0.mlp.up_proj.weight", "blk.3"] {
            #expect(TensorNames.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func layoutHasBiasesOnlyWhenTheConfigSaysSo() {
        var c = tinyConfig(layers: 2)
        #expect(!TensorNames.layout(for: c).contains { $0.name.hasSuffix(".bias") })
        #expect(TensorNames.layout(for: c).count == 1 + 2 * 9 + 1)
        c.attentionBias = true
        let layout = TensorNames.layout(for: c)
        #expect(layout.count == 1 + 2 * 12 + 1)
        let shapes = Dictionary(uniqueKeysWithValues: layout.map { ($0.name, $0.shape) })
        #expect(shapes["blk.0.attn_q.bias"] == [16] && shapes["blk.0.attn_k.bias"] == [8] && shapes["blk.1.attn_v.bias"] == [4])
    }

    @Test func kvGroupsCutTheirBiasesWithTheirHeads() throws {
        var c = tinyConfig(layers: 2)
        c.attentionBias = true
        let g = DecoderStructures.kvGroups(c, layer: 0)  // 4 query heads over 2 KV heads, head_dim 4
        #expect(g.units.count == 2)
        let u = g.units[1]
        let slices = Dictionary(uniqueKeysWithValues: u.slices.map { ($0.tensor, $0) })
        #expect(slices["blk.0.attn_q.bias"]?.range == 8..<16 && slices["blk.0.attn_q.weight"]?.range == 8..<16)
        #expect(slices["blk.0.attn_k.bias"]?.range == 4..<8 && slices["blk.0.attn_v.bias"]?.range == 4..<8)
        #expect(slices["blk.0.attn_output.weight"]?.axis == 1)
        // q: 8 rows × 16, k and v: 4 × 16 each, o: 8 columns × 16 rows, biases 8 + 4 + 4.
        #expect(u.parameterCount == 8 * 16 + 2 * 4 * 16 + 8 * 16 + 16)
        c.attentionBias = false
        #expect(DecoderStructures.kvGroups(c, layer: 0).units[1].parameterCount == 8 * 16 + 2 * 4 * 16 + 8 * 16)
    }

    @Test func hiddenChannelsAndBlocksCountEveryParameter() throws {
        var c = tinyConfig(layers: 2)
        c.tiedEmbeddings = false
        c.attentionBias = true
        let counts = TensorNames.layout(for: c).map { (name: $0.name, count: $0.shape.reduce(1, *)) }
        let blocks = DecoderStructures.blocks(c, layers: 0..<2)
        let layerParams = counts.filter { TensorNames.layer(of: $0.name) != nil }.reduce(0) { $0 + $1.count }
        #expect(blocks.units.reduce(0) { $0 + $1.parameterCount } == layerParams)
        let hidden = DecoderStructures.hiddenChannels(c)
        #expect(hidden.units.count == 16)
        // Every parameter but the biases lies on exactly one residual channel.
        let all = counts.reduce(0) { $0 + $1.count }, biases = counts.filter { $0.name.hasSuffix(".bias") }.reduce(0) { $0 + $1.count }
        #expect(hidden.units.reduce(0) { $0 + $1.parameterCount } == all - biases)
        #expect(!hidden.units[0].slices.contains { $0.tensor.hasSuffix(".bias") })
    }

    /// attn_output and ffn_down biases (FLAP's compensation): in the layout only with `outputBias`,
    /// one entry per residual channel, whole in KV groups and MLP channels, in their block.
    @Test func outputBiasesFollowTheResidualStream() throws {
        var c = tinyConfig(layers: 2)
        #expect(!TensorNames.layout(for: c).contains { TensorNames.parse($0.name)?.role.outputBiasOf != nil })
        c.outputBias = true
        let layout = TensorNames.layout(for: c)
        #expect(layout.count == 1 + 2 * 11 + 1)
        let shapes = Dictionary(uniqueKeysWithValues: layout.map { ($0.name, $0.shape) })
        #expect(shapes["blk.1.attn_output.bias"] == [16] && shapes["blk.1.ffn_down.bias"] == [16])
        #expect(TensorRole.attnOutput.outputBias == .attnOutputBias && TensorRole.ffnDownBias.outputBiasOf == .ffnDown)
        #expect(TensorRole.attnOutput.bias == nil && TensorRole.attnOutputBias.biasOf == nil)
        let hidden = DecoderStructures.hiddenChannels(c)
        let all = layout.reduce(0) { $0 + $1.shape.reduce(1, *) }
        #expect(hidden.units.reduce(0) { $0 + $1.parameterCount } == all)
        #expect(hidden.units[5].slices.contains(TensorSlice("blk.0.attn_output.bias", axis: 0, 5..<6)))
        let whole = [DecoderStructures.kvGroups(c, layer: 0), DecoderStructures.mlpChannels(c, layer: 1)]
        #expect(!whole.flatMap(\.units).flatMap(\.slices).contains { $0.tensor.hasSuffix("output.bias") || $0.tensor.hasSuffix("down.bias") })
        let block = DecoderStructures.blocks(c, layers: 0..<2).units[1]
        #expect(block.slices.contains(TensorSlice("blk.1.ffn_down.bias", axis: 0, 0..<16)))
    }

    /// A config encoded before `output_bias` existed decodes without it (false); one with it round-trips.
    @Test func configsWithoutOutputBiasStillDecode() throws {
        var c = tinyConfig(layers: 2)
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as? [String: Any])
        #expect(json["output_bias"] as? Bool == false)
        json["output_bias"] = nil
        #expect(try JSONDecoder().decode(ModelConfig.self, from: JSONSerialization.data(withJSONObject: json)) == c)
        c.outputBias = true
        #expect(try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c)) == c)
    }
}
