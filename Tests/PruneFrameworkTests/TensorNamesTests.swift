import Testing
@testable import PruneFramework

/// Canonical tensor names are built and parsed in one place, and the coupled structures take their
/// slices (biases included) from the tensor roles.
@Suite struct TensorNamesTests {
    @Test(arguments: [("blk.3.ffn_up.weight", 3, TensorRole.ffnUp), ("blk.0.attn_q.bias", 0, .attnQBias),
                      ("blk.12.attn_output.weight", 12, .attnOutput)])
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
}
