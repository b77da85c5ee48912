import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// SmolLM2-135M against llama.cpp's outputs in Fixtures/llamacpp (forward pass on reference token ids).
@Suite(.requires(.smolLM2), .serialized)
struct ReferenceTests {
    static let refDir = Repository.llamaCppFixtures

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

    /// PyTorch's f32 forward of the same dequantised weights (bench/torch_reference_logits.py) is an
    /// independent implementation: our logits must agree with it closely.
    @Test func logitsOfWindow0MatchPyTorch() throws {
        let model = try #require(SharedModel.model)
        let lg = try model.logits(tokens: Array(try windows()[0..<8]), batch: 1, seqLen: 8)
        let torch = try TestPaths.readFloats(TestPaths.repoRoot + "/Tests/PruneFrameworkTests/Fixtures/smollm2_torch_window0_logits_pos0-7.f32")
        #expect(torch.count == lg.count)
        let maxDiff = zip(lg, torch).map { abs($0 - $1) }.max() ?? .infinity
        print("max |Δlogit| vs PyTorch at positions 0-7: \(maxDiff)")
        #expect(maxDiff < 0.01)
    }

    /// The f32 forward against llama.cpp. These logits are very sensitive to arithmetic: llama.cpp
    /// itself (0.3.36, no flash attention, which reproduces the reference file exactly) moves them by up
    /// to 1.35 when only its KV cache changes from f16 to f32, and PyTorch's f32 forward deviates from
    /// the reference by the same 1.05 max / 498 of 512 top-1 as ours. These bounds pin that measured
    /// deviation so a regression shows; the issue's 0.05 / 99% targets are met by the llama.cpp
    /// numerics path (`LlamaCppNumericsReferenceTests`).
    @Test func logitsAndTop1OfWindow0AgainstLlamaCpp() throws {
        let model = try #require(SharedModel.model)
        let w0 = Array(try windows()[0..<512])
        let V = model.config.vocabSize
        let lg = try model.logits(tokens: w0, batch: 1, seqLen: 512)
        let ref = try TestPaths.readFloats(Self.refDir + "/smollm2_llamacpp_window0_logits_pos0-7.f32")
        #expect(ref.count == 8 * V)
        var maxDiff: Float = 0
        for i in 0..<(8 * V) { maxDiff = max(maxDiff, abs(lg[i] - ref[i])) }
        print("max |Δlogit| vs llama.cpp at positions 0-7: \(maxDiff)")
        #expect(maxDiff < 1.1)

        let (same, total) = try Self.top1Agreement(lg, vocab: V)
        print("top-1 agreement with llama.cpp: \(same)/\(total)")
        #expect(total == 512)
        #expect(Double(same) >= 0.97 * Double(total))
    }

    /// The reference's parsed JSON.
    static func referenceJSON() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: refDir + "/smollm2_llamacpp.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// How many positions of window 0 have the same top-1 token in `logits` (512 × vocab) as in llama.cpp.
    static func top1Agreement(_ logits: [Float], vocab V: Int) throws -> (same: Int, total: Int) {
        let top = try #require(try referenceJSON()["window0_top10"] as? [[String: Any]])
        var same = 0
        for entry in top {
            let pos = try #require(entry["position"] as? Int), ids = try #require(entry["ids"] as? [Int])
            let row = logits[(pos * V)..<((pos + 1) * V)]
            let mine = row.indices.max { row[$0] < row[$1] }! - pos * V
            if mine == ids[0] { same += 1 }
        }
        return (same, top.count)
    }
}

/// The llama.cpp numerics path (`LlamaCppNumerics`) against llama.cpp's reference outputs: the issue's
/// must-show (max |Δlogit| < 0.05 at positions 0–7 of window 0, the same top-1 token at ≥ 99% of its
/// 512 positions, mean NLL of the four windows within 0.5%). Measured: 3.3e-5, 512/512, mean NLL
/// 3.43554 for 3.43568 with every per-token NLL within 4e-4 (the f32 forward: 1.05, 498/512, 3.43265).
/// The remaining differences come from the output head's summation order and our f32 log-sum-exp.
@Suite(.requires(.smolLM2), .serialized)
struct LlamaCppNumericsReferenceTests {
    /// Final-norm hidden states of the four reference windows, computed once for the suite.
    static let run: Result<(model: Transformer, numerics: LlamaCppNumerics, tokens: [Int32], hidden: [Float]), Error> = Result {
        let model = try #require(SharedModel.model)
        let numerics = try LlamaCppNumerics(ggufPath: TestPaths.model)
        let ids = try TestPaths.readInt32s(ReferenceTests.refDir + "/smollm2_wikitext2_test_tokens.i32")
        let tokens = Array(ids[0..<(4 * 512)])
        let start = Date()
        let hidden = try model.llamaCppHiddenStates(tokens: tokens, batch: 4, seqLen: 512, numerics: numerics)
        print("llama.cpp numerics: 4×512 tokens in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        return (model, numerics, tokens, hidden)
    }

    @Test func logitsAndTop1OfWindow0MatchLlamaCpp() throws {
        let r = try Self.run.get()
        let V = r.model.config.vocabSize
        let lg = r.model.llamaCppLogits(hiddenStates: r.hidden, rows: 0..<512, numerics: r.numerics)
        let ref = try TestPaths.readFloats(ReferenceTests.refDir + "/smollm2_llamacpp_window0_logits_pos0-7.f32")
        #expect(ref.count == 8 * V)
        var maxDiff: Float = 0
        for i in 0..<(8 * V) { maxDiff = max(maxDiff, abs(lg[i] - ref[i])) }
        print("llama.cpp numerics: max |Δlogit| at positions 0-7: \(maxDiff)")
        #expect(maxDiff < 0.05)
        let (same, total) = try ReferenceTests.top1Agreement(lg, vocab: V)
        print("llama.cpp numerics: top-1 agreement \(same)/\(total)")
        #expect(total == 512)
        #expect(Double(same) >= 0.99 * Double(total))
    }

    @Test func nllOfFourWindowsMatchesLlamaCpp() throws {
        let r = try Self.run.get()
        let nll = r.model.llamaCppNLL(hiddenStates: r.hidden, tokens: r.tokens, batch: 4, seqLen: 512, numerics: r.numerics)
        let json = try ReferenceTests.referenceJSON()
        let want = try #require(json["mean_nll"] as? Double)
        let perToken = try #require(json["nll"] as? [[Double]]).flatMap { $0 }
        #expect(perToken.count == nll.perToken.count)
        let worst = zip(nll.perToken, perToken).map { abs(Double($0) - $1) }.max() ?? .infinity
        print("llama.cpp numerics: mean NLL \(nll.mean) (llama.cpp \(want)), max per-token |Δ| \(worst)")
        #expect(abs(nll.mean - want) / want < 0.005)
        #expect(worst < 1e-3)
    }

    /// `prune eval --numerics llamacpp` goes through `Perplexity.evaluate(numerics:)`. Attention is
    /// causal, so a 128-token window predicts what the first 127 positions of llama.cpp's 512-token
    /// window 0 predict.
    @Test func perplexityWithLlamaCppNumericsMatchesTheReferenceNLL() throws {
        let r = try Self.run.get()
        let result = try Perplexity.evaluate(model: r.model, tokens: Array(r.tokens[0..<256]), seqLen: 128,
                                             maxWindows: 1, numerics: r.numerics)
        let json = try ReferenceTests.referenceJSON()
        let window0 = try #require((json["nll"] as? [[Double]])?.first)
        let want = window0[0..<127].reduce(0, +) / 127
        #expect(result.windows == 1 && result.tokens == 127)
        print("llama.cpp numerics via Perplexity.evaluate: mean NLL \(result.meanNLL) (llama.cpp \(want))")
        #expect(abs(result.meanNLL - want) < 4e-4)
    }
}

/// The pieces of the llama.cpp numerics path on small inputs (no model file needed): each fast piece
/// against a plain transcription of ggml's code, and the whole path on a tiny hand-written Q4_1 model.
@Suite struct LlamaCppNumericsTests {
    /// A tiny LLaMA as `llama-quantize … Q4_1` lays it out: Q4_1 linear weights, a tied Q8_0 embedding,
    /// f32 norms; written by hand because GGUFWriter does not quantize to Q4_1.
    /// With `outputBias`, f32 attn_output and ffn_down biases too (FLAP's compensation).
    static func writeTinyQ4_1Model(to path: String, seed: UInt64, outputBias: Bool = false) throws {
        let vocab = 40, dim = 64, layers = 2, heads = 4, kvHeads = 2, headDim = 16, ffn = 96
        var rng = SplitMix64(seed: seed)
        func f16(_ x: Float) -> [UInt8] { let h = Half.fromFloat(x); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
        func q4_1(_ rows: Int, _ cols: Int) -> [UInt8] {
            (0..<(rows * cols / 32)).flatMap { _ -> [UInt8] in
                let d = 0.01 + 0.02 * rng.nextUnit()
                return f16(d) + f16(-8 * d + 0.01 * rng.nextSymmetric()) + (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
        func q8_0(_ rows: Int, _ cols: Int) -> [UInt8] {
            (0..<(rows * cols / 32)).flatMap { _ in f16(0.01) + (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        }
        func f32(_ n: Int) -> [UInt8] {
            (0..<n).flatMap { _ in withUnsafeBytes(of: (1 + 0.1 * rng.nextSymmetric()).bitPattern.littleEndian) { Array($0) } }
        }
        var tensors: [(name: String, dims: [UInt64], type: UInt32, bytes: [UInt8])] = [
            (TensorNames.tokenEmbedding, [UInt64(dim), UInt64(vocab)], 8, q8_0(vocab, dim)),
        ]
        for l in 0..<layers {
            func linear(_ name: String, _ rows: Int, _ cols: Int) -> (String, [UInt64], UInt32, [UInt8]) {
                (name, [UInt64(cols), UInt64(rows)], 3, q4_1(rows, cols))
            }
            tensors.append((TensorNames.attnNorm(l), [UInt64(dim)], 0, f32(dim)))
            tensors.append(linear(TensorNames.attnQ(l), heads * headDim, dim))
            tensors.append(linear(TensorNames.attnK(l), kvHeads * headDim, dim))
            tensors.append(linear(TensorNames.attnV(l), kvHeads * headDim, dim))
            tensors.append(linear(TensorNames.attnOutput(l), dim, heads * headDim))
            tensors.append((TensorNames.ffnNorm(l), [UInt64(dim)], 0, f32(dim)))
            tensors.append(linear(TensorNames.ffnGate(l), ffn, dim))
            tensors.append(linear(TensorNames.ffnUp(l), ffn, dim))
            tensors.append(linear(TensorNames.ffnDown(l), dim, ffn))
            for role in [TensorRole.attnOutputBias, .ffnDownBias] where outputBias {
                let values = (0..<dim).flatMap { _ in withUnsafeBytes(of: (0.5 * rng.nextSymmetric()).bitPattern.littleEndian) { Array($0) } }
                tensors.append((TensorNames.name(role, l), [UInt64(dim)], 0, values))
            }
        }
        tensors.append((TensorNames.outputNorm, [UInt64(dim)], 0, f32(dim)))
        let ints: [(String, Int)] = [("block_count", layers), ("context_length", 64), ("embedding_length", dim),
                                     ("feed_forward_length", ffn), ("attention.head_count", heads),
                                     ("attention.head_count_kv", kvHeads)]
        var raw = RawGGUF()
        raw.header(tensors: UInt64(tensors.count), kvs: UInt64(3 + ints.count))
        raw.str("general.architecture"); raw.u32(8); raw.str("llama")
        for (key, v) in ints { raw.str("llama." + key); raw.u32(4); raw.u32(UInt32(v)) }
        raw.str("llama.rope.freq_base"); raw.u32(6); raw.u32(Float(10000).bitPattern)
        raw.str("llama.attention.layer_norm_rms_epsilon"); raw.u32(6); raw.u32(Float(1e-5).bitPattern)
        var offset = 0
        for t in tensors {
            raw.tensor(t.name, dims: t.dims, type: t.type, offset: UInt64(offset))
            offset += (t.bytes.count + 31) / 32 * 32
        }
        for t in tensors { raw.data(0); raw.bytes += t.bytes }
        raw.data(0)
        try Data(raw.bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Runs `body` with the tiny model, its numerics and a temporary path that is removed afterwards.
    func withTinyModel(_ body: (Transformer, LlamaCppNumerics) throws -> Void) throws {
        let path = NSTemporaryDirectory() + "prune-llamacpp-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.writeTinyQ4_1Model(to: path, seed: 7)
        try body(try Transformer(path: path), try LlamaCppNumerics(ggufPath: path))
    }

    @Test func tinyModelAgreesWithTheF32ForwardUpToQuantizationNoise() throws {
        try withTinyModel { model, numerics in
            let tokens = (0..<24).map { Int32($0 * 7 % 40) }
            let emulated = try model.llamaCppLogits(tokens: tokens, batch: 2, seqLen: 12, numerics: numerics)
            let exact = try model.logits(tokens: tokens, batch: 2, seqLen: 12)
            let scale = exact.map(abs).max() ?? 0
            let diff = zip(emulated, exact).map { abs($0 - $1) }.max() ?? .infinity
            #expect(scale > 0.1)
            #expect(diff > 0, "Q8 activations and f16 attention must change something")
            #expect(diff < 0.05 * scale, "max |Δlogit| \(diff) of max |logit| \(scale)")
            let nll = try model.llamaCppNLL(tokens: tokens, batch: 2, seqLen: 12, numerics: numerics)
            var want = 0.0
            for b in 0..<2 {
                for t in 0..<11 {
                    let row = (b * 12 + t) * 40
                    want += emulated[row..<(row + 40)].withContiguousStorageIfAvailable {
                        crossEntropyForward($0.baseAddress!, count: 40, target: Int(tokens[b * 12 + t + 1]))
                    }!
                }
            }
            #expect(nll.count == 22)
            #expect(abs(nll.sum - want) < 1e-4)
        }
    }

    /// Output biases are added to the Q4_1 matmul's output before the residual, as llama.cpp's graph
    /// adds `wo_b` and `ffn_down_b`: the emulation still agrees with the f32 forward up to quantization
    /// noise, while dropping the biases would move the logits far more than that noise.
    @Test func outputBiasesAreAddedAsLlamaCppAddsThem() throws {
        let path = NSTemporaryDirectory() + "prune-llamacpp-bias-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.writeTinyQ4_1Model(to: path, seed: 7, outputBias: true)
        let model = try Transformer(path: path), numerics = try LlamaCppNumerics(ggufPath: path)
        #expect(model.config.outputBias)
        let tokens = (0..<24).map { Int32($0 * 7 % 40) }
        let emulated = try model.llamaCppLogits(tokens: tokens, batch: 2, seqLen: 12, numerics: numerics)
        let exact = try model.logits(tokens: tokens, batch: 2, seqLen: 12)
        let noise = zip(emulated, exact).map { abs($0 - $1) }.max() ?? .infinity
        for l in 0..<2 { for role in [TensorRole.attnOutputBias, .ffnDownBias] { model.params.view(TensorNames.name(role, l)).update(repeating: 0) } }
        model.params.markModified()
        let without = try model.llamaCppLogits(tokens: tokens, batch: 2, seqLen: 12, numerics: numerics)
        let effect = zip(emulated, without).map { abs($0 - $1) }.max() ?? 0
        #expect(noise < 0.05 * (exact.map(abs).max() ?? 0), "max |Δlogit| \(noise)")
        #expect(effect > 10 * noise, "the biases move the logits by \(effect), the emulation differs by \(noise)")
    }

    @Test func numericsOfAnotherModelAreRejected() throws {
        try withTinyModel { model, numerics in
            model.params.view(TensorNames.ffnUp(1))[5] += 0.5
            model.params.markModified()
            #expect {
                _ = try model.llamaCppLogits(tokens: [1, 2, 3], batch: 1, seqLen: 3, numerics: numerics)
            } throws: { ($0 as? PruneError)?.code == .invalidArgument && "\($0)".contains("ffn_up") }
        }
    }

    @Test func oneTokenSequencesAreRejected() throws {
        try withTinyModel { model, numerics in
            #expect {
                _ = try model.llamaCppLogits(tokens: [1, 2], batch: 2, seqLen: 1, numerics: numerics)
            } throws: { ($0 as? PruneError)?.code == .shapeMismatch && "\($0)".contains("at least 2 tokens") }
        }
    }

    @Test func unquantizedModelIsUnsupported() throws {
        let path = NSTemporaryDirectory() + "prune-llamacpp-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Transformer(randomWith: tinyConfig(), seed: 3).writeGGUF(to: path, type: .f32)
        #expect {
            _ = try LlamaCppNumerics(ggufPath: path)
        } throws: { ($0 as? PruneError)?.code == .unsupported && "\($0)".contains("q8_0, q4_1") }
    }

    /// `ggml_vec_dot_q4_1_q8_1` written out plainly: Q8_1 quantization, 8 lanes of 4 products in
    /// element order, true fma, `hsum_float_8`, Σ m·s.
    static func naiveQ4_1Dot(_ raw: [UInt8], row: Int, _ x: ArraySlice<Float>) -> Float {
        let nb = x.count / 32
        var acc = [Float](repeating: 0, count: 8), summs: Float = 0
        for b in 0..<nb {
            let blk = Array(raw[((row * nb + b) * 20)..<((row * nb + b) * 20 + 20)])
            let dw = Half.toFloat(UInt16(blk[0]) | UInt16(blk[1]) << 8), mw = Half.toFloat(UInt16(blk[2]) | UInt16(blk[3]) << 8)
            let qw: [Int] = (0..<32).map { (i: Int) -> Int in i < 16 ? Int(blk[4 + i] & 0xF) : Int(blk[i - 12] >> 4) }
            let xs = Array(x[(x.startIndex + 32 * b)..<(x.startIndex + 32 * b + 32)])
            let amax = xs.map(abs).max()!
            let d = amax / 127, id: Float = amax != 0 ? 127 / amax : 0
            let qx = xs.map { Int(($0 * id).rounded(.toNearestOrEven)) }
            let dx = Half.toFloat(Half.fromFloat(d)), sx = Half.toFloat(Half.fromFloat(d * Float(qx.reduce(0, +))))
            for j in 0..<8 {
                var xy = 0
                for e in 0..<4 { xy += qw[4 * j + e] * qx[4 * j + e] }
                acc[j] = acc[j].addingProduct(dw * dx, Float(xy))
            }
            summs += mw * sx
        }
        return (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) + summs
    }

    @Test func q4_1MatmulMatchesGGMLDotProductBitForBit() throws {
        let n = 5, k = 96, m = 3
        var rng = SplitMix64(seed: 11)
        let raw: [UInt8] = (0..<(n * k / 32)).flatMap { _ -> [UInt8] in
            let d = Half.fromFloat(0.02 * rng.nextUnit() + 0.001), mn = Half.fromFloat(-0.15 * rng.nextUnit())
            return [UInt8(d & 0xFF), UInt8(d >> 8), UInt8(mn & 0xFF), UInt8(mn >> 8)] + (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        // One block holds an outlier, as SmolLM2's first token does: its other values quantize coarsely.
        var x = (0..<(m * k)).map { _ in 3 * rng.nextSymmetric() }
        x[40] = 2500
        let w = try raw.withUnsafeBytes { try Q4_1Weight($0, rows: n, cols: k) }
        var y = [Float](repeating: 0, count: m * n)
        y.withUnsafeMutableBufferPointer { yb in x.withUnsafeBufferPointer { q4_1Matmul(yb.baseAddress!, $0.baseAddress!, w, m: m) } }
        for t in 0..<m {
            for r in 0..<n {
                #expect(y[t * n + r].bitPattern == Self.naiveQ4_1Dot(raw, row: r, x[(t * k)..<(t * k + k)]).bitPattern, "token \(t) row \(r)")
            }
        }
    }

    @Test func halfRoundingMatchesHalfConversion() {
        var rng = SplitMix64(seed: 5)
        let edges: [Float] = [0, 65504, 65519.99, 65520, 0x1p-14, 0x1p-14 - 0x1p-30, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26,
                              1 + 0x1p-11, 1 + 0x1.8p-11, 1 + 0x1p-12, 3.14159]
        let values = edges + edges.map { -$0 } + (0..<100_000).map { _ in
            Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x47FF_FFFF | (rng.next() & 1 == 0 ? 0 : 0x8000_0000))
        }
        for v in values {
            #expect(halfRounded(v).bitPattern == Half.toFloat(Half.fromFloat(v)).bitPattern, "\(v)")
        }
    }

    /// `ggml_v_expf` with the hardware's fused multiply-add, to check the Double emulation of it.
    static func expWithTrueFMA(_ x: Float) -> Float {
        func fma(_ a: Float, _ b: Float, _ c: Float) -> Float { c.addingProduct(a, b) }
        let z = fma(x, 0x1.715476p+0, 0x1.8p23), n = z - 0x1.8p23
        let b = fma(-n, 0x1.7f7d1cp-20, fma(-n, 0x1.62e4p-1, x)), u = b * b
        let j = fma(fma(fma(0x1.0e4020p-7, b, 0x1.573e2ep-5), u, fma(0x1.555e66p-3, b, 0x1.fffdb6p-2)), u, fma(0x1.ffffecp-1, b, 1))
        guard abs(n) <= 192 else { return n <= 0 ? 0 : .infinity }
        return scalbnf(j, Int32(n))
    }

    @Test func ggmlExpMatchesItsDefinitionAndIsCloseToExp() {
        var x: Float = -110
        while x < 90 {
            #expect(ggmlExp(x).bitPattern == Self.expWithTrueFMA(x).bitPattern, "\(x)")
            if abs(x) < 80 { #expect(abs(ggmlExp(x) / expf(x) - 1) < 4e-7, "\(x)") }
            x += 0.000_731
        }
        #expect(ggmlSiLU(0) == 0)
        #expect(abs(ggmlSiLU(2) - 2 / (1 + expf(-2))) < 1e-6)
    }
}
