import Foundation
import Testing
@testable import PruneFramework

/// Finite-difference checks of the hand-written backward pass, in Double: per kernel, then the whole model.
///
/// Each kernel check projects the op's output on a fixed random vector r (L = ⟨r, out⟩), so the
/// analytic input gradient is the backward applied to dout = r, and compares it with central
/// differences (h = 1e-5) element by element: |a − f| ≤ 1e-4 · max(|a|, |f|, 1e-6).
@Suite struct BackpropTests {
    // MARK: - Helpers

    static func random(_ n: Int, seed: UInt64, scale: Double = 1) -> [Double] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in scale * Double(g.nextSymmetric()) }
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// Central differences of f at x, for every element of x.
    static func numericGradient(_ x: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
        var x = x
        return (0..<x.count).map { i in
            let v = x[i]
            x[i] = v + h
            let up = f(x)
            x[i] = v - h
            let down = f(x)
            x[i] = v
            return (up - down) / (2 * h)
        }
    }

    /// The worst relative error, with a floor for near-zero entries.
    static func worstRelativeError(_ a: [Double], _ f: [Double]) -> Double {
        zip(a, f).map { abs($0 - $1) / max(abs($0), abs($1), 1e-6) }.max() ?? 0
    }

    static func check(_ label: String, analytic: [Double], numeric: [Double]) {
        #expect(analytic.count == numeric.count)
        let err = worstRelativeError(analytic, numeric)
        #expect(err < 1e-4, "\(label): relative error \(err)")
        #expect(numeric.contains { abs($0) > 1e-3 }, "\(label): the gradient is trivially zero")
    }

    // MARK: - Kernels

    @Test func rmsnorm() {
        let rows = 3, dim = 7
        let x0 = Self.random(rows * dim, seed: 1), w0 = Self.random(dim, seed: 2), r = Self.random(rows * dim, seed: 3)
        func loss(_ x: [Double], _ w: [Double]) -> Double {
            var out = [Double](repeating: 0, count: rows * dim)
            rmsnormForward(&out, nil, x, w, rows: rows, dim: dim, eps: 1e-5)
            return Self.dot(out, r)
        }
        var rstd = [Double](repeating: 0, count: rows), out = [Double](repeating: 0, count: rows * dim)
        rmsnormForward(&out, &rstd, x0, w0, rows: rows, dim: dim, eps: 1e-5)
        var dx = [Double](repeating: 0, count: rows * dim), dw = [Double](repeating: 0, count: dim)
        rmsnormBackward(&dx, &dw, r, x0, w0, rstd, rows: rows, dim: dim)
        Self.check("rmsnorm dx", analytic: dx, numeric: Self.numericGradient(x0) { loss($0, w0) })
        Self.check("rmsnorm dw", analytic: dw, numeric: Self.numericGradient(w0) { loss(x0, $0) })
    }

    @Test func swiglu() {
        let n = 11
        let g0 = Self.random(n, seed: 4, scale: 3), u0 = Self.random(n, seed: 5), r = Self.random(n, seed: 6)
        func loss(_ g: [Double], _ u: [Double]) -> Double {
            var out = [Double](repeating: 0, count: n)
            swigluForward(&out, g, u, count: n)
            return Self.dot(out, r)
        }
        var dg = [Double](repeating: 0, count: n), du = dg
        swigluBackward(&dg, &du, r, g0, u0, count: n)
        Self.check("swiglu dgate", analytic: dg, numeric: Self.numericGradient(g0) { loss($0, u0) })
        Self.check("swiglu dup", analytic: du, numeric: Self.numericGradient(u0) { loss(g0, $0) })
    }

    @Test(arguments: [RoPELayout.adjacentPairs, .halves]) func rope(layout: RoPELayout) {
        let rows = 5, heads = 2, hd = 6
        let table = RoPETable(headDim: hd, base: 10000, maxPositions: 16)
        let x0 = Self.random(rows * heads * hd, seed: 7), r = Self.random(rows * heads * hd, seed: 8)
        let pos = { (i: Int) in 3 * i + 1 }
        func loss(_ x: [Double]) -> Double {
            var y = x
            ropeForward(&y, rows: rows, nHeads: heads, headDim: hd, positions: pos, cos: table.cos, sin: table.sin, layout: layout)
            return Self.dot(y, r)
        }
        var dx = r
        ropeBackward(&dx, rows: rows, nHeads: heads, headDim: hd, positions: pos, cos: table.cos, sin: table.sin, layout: layout)
        Self.check("rope \(layout)", analytic: dx, numeric: Self.numericGradient(x0, loss))
    }

    /// The halves layout is the adjacent one with each head's rows reordered (HFNames.hfToGGUF).
    @Test func ropeHalvesIsAdjacentPairsOnPermutedRows() {
        let rows = 3, heads = 2, hd = 8
        let table = RoPETable(headDim: hd, base: 10000, maxPositions: 8)
        var halves = (0..<(rows * heads * hd)).map { Float($0 % 13) - 6 }
        var adjacent = halves
        adjacent.withUnsafeMutableBufferPointer { HFNames.hfToGGUF($0, nHead: rows * heads, headDim: hd, cols: 1) }
        ropeForward(&halves, rows: rows, nHeads: heads, headDim: hd, positions: { $0 }, cos: table.cos, sin: table.sin, layout: .halves)
        ropeForward(&adjacent, rows: rows, nHeads: heads, headDim: hd, positions: { $0 }, cos: table.cos, sin: table.sin)
        halves.withUnsafeMutableBufferPointer { HFNames.hfToGGUF($0, nHead: rows * heads, headDim: hd, cols: 1) }
        #expect(halves == adjacent)
    }

    @Test func causalAttentionWithGQA() {
        let T = 5, group = 2, hd = 4, qStride = 3 * hd, kvStride = 2 * hd, firstHead = 1
        let q0 = Self.random(T * qStride, seed: 9), k0 = Self.random(T * kvStride, seed: 10)
        let v0 = Self.random(T * kvStride, seed: 11), r = Self.random(T * qStride, seed: 12)
        // Only the group's columns of out are written: project those.
        let mask = (0..<(T * qStride)).map { i -> Double in
            let c = i % qStride
            return c >= firstHead * hd && c < (firstHead + group) * hd ? 1 : 0
        }
        let rm = zip(r, mask).map { $0 * $1 }
        func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
            var out = [Double](repeating: 0, count: T * qStride)
            attentionForward(out: &out, outStride: qStride, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                             T: T, S: T, firstHead: firstHead, groupSize: group, headDim: hd)
            return Self.dot(out, rm)
        }
        var out = [Double](repeating: 0, count: T * qStride), probs = [Double](repeating: 0, count: group * T * T)
        attentionForward(out: &out, outStride: qStride, q: q0, qStride: qStride, k: k0, v: v0, kvStride: kvStride,
                         probs: &probs, T: T, S: T, firstHead: firstHead, groupSize: group, headDim: hd)
        var dq = [Double](repeating: 0, count: T * qStride)
        var dk = [Double](repeating: 0, count: T * kvStride), dv = dk
        attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: rm, q: q0, qStride: qStride, k: k0, v: v0, kvStride: kvStride,
                          probs: probs, T: T, S: T, firstHead: firstHead, groupSize: group, headDim: hd)
        Self.check("attention dq", analytic: dq, numeric: Self.numericGradient(q0) { loss($0, k0, v0) })
        Self.check("attention dk", analytic: dk, numeric: Self.numericGradient(k0) { loss(q0, $0, v0) })
        Self.check("attention dv", analytic: dv, numeric: Self.numericGradient(v0) { loss(q0, k0, $0) })
    }

    /// The forward without saved probabilities works in tiles of query rows against only the keys
    /// they see; over several tiles, with earlier positions cached (S > T), it must give the plain
    /// causal attention, and what the probability-saving path gives.
    @Test func tiledCausalAttentionMatchesThePlainDefinition() {
        let T = 2 * attentionTileRows + 17, S = T + 9, group = 3, hd = 4, qStride = 4 * hd, kvStride = 2 * hd, firstHead = 1
        let q = Self.random(T * qStride, seed: 21), k = Self.random(S * kvStride, seed: 22), v = Self.random(S * kvStride, seed: 23)
        var tiled = [Double](repeating: 7, count: T * qStride), saved = tiled
        var probs = [Double](repeating: 0, count: group * T * S)
        attentionForward(out: &tiled, outStride: qStride, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                         T: T, S: S, firstHead: firstHead, groupSize: group, headDim: hd)
        attentionForward(out: &saved, outStride: qStride, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                         probs: &probs, T: T, S: S, firstHead: firstHead, groupSize: group, headDim: hd)
        var worst = 0.0
        for t in 0..<T {
            for c in 0..<qStride {
                let head = c / hd
                guard head >= firstHead && head < firstHead + group else {
                    #expect(tiled[t * qStride + c] == 7 && saved[t * qStride + c] == 7)
                    continue
                }
                let visible = S - T + t + 1
                let scores = (0..<visible).map { s in
                    (0..<hd).reduce(0.0) { $0 + q[t * qStride + head * hd + $1] * k[s * kvStride + $1] } / Double(hd).squareRoot()
                }
                let mx = scores.max()!, e = scores.map { exp($0 - mx) }, z = e.reduce(0, +)
                let want = (0..<visible).reduce(0.0) { $0 + e[$1] / z * v[$1 * kvStride + c % hd] }
                worst = max(worst, abs(tiled[t * qStride + c] - want), abs(saved[t * qStride + c] - want))
            }
        }
        #expect(worst < 1e-12, "max |Δ| \(worst)")
    }

    @Test func softmaxCrossEntropy() {
        let n = 9, target = 4
        let z0 = Self.random(n, seed: 13, scale: 4)
        var g = z0
        let nll = crossEntropyBackward(&g, count: n, target: target, scale: 0.5)
        #expect(abs(nll - crossEntropyForward(z0, count: n, target: target)) < 1e-12)
        Self.check("cross-entropy", analytic: g, numeric: Self.numericGradient(z0) { 0.5 * crossEntropyForward($0, count: n, target: target) })
    }

    @Test func embedding() {
        let vocab = 6, dim = 3, tokens: [Int32] = [2, 5, 2, 0]
        let t0 = Self.random(vocab * dim, seed: 14), r = Self.random(tokens.count * dim, seed: 15)
        func loss(_ t: [Double]) -> Double {
            var out = [Double](repeating: 0, count: tokens.count * dim)
            embeddingForward(&out, t, tokens: tokens, dim: dim)
            return Self.dot(out, r)
        }
        var dt = [Double](repeating: 0, count: vocab * dim)
        embeddingBackward(&dt, r, tokens: tokens, dim: dim)
        let numeric = Self.numericGradient(t0, loss)
        #expect(Self.worstRelativeError(dt, numeric) < 1e-4)
    }

    @Test func linearProducts() {
        let m = 4, n = 5, k = 3
        let x0 = Self.random(m * k, seed: 16), w0 = Self.random(n * k, seed: 17), r = Self.random(m * n, seed: 18)
        func loss(_ x: [Double], _ w: [Double]) -> Double {
            var y = [Double](repeating: 0, count: m * n)
            Double.xwt(&y, x, w, m: m, n: n, k: k, accumulate: false)
            return Self.dot(y, r)
        }
        var dx = [Double](repeating: 0, count: m * k), dw = [Double](repeating: 0, count: n * k)
        Double.dyw(&dx, r, w0, m: m, n: n, k: k, accumulate: false)
        Double.dytx(&dw, r, x0, m: m, n: n, k: k, accumulate: false)
        Self.check("matmul dx", analytic: dx, numeric: Self.numericGradient(x0) { loss($0, w0) })
        Self.check("matmul dw", analytic: dw, numeric: Self.numericGradient(w0) { loss(x0, $0) })
    }

    // MARK: - Whole model

    /// A tiny model's parameters in Double, with gradient buffers.
    final class DoubleModel {
        let config: ModelConfig
        var weights: [String: UnsafeMutablePointer<Double>] = [:]
        var grads: [String: UnsafeMutablePointer<Double>] = [:]
        var counts: [String: Int] = [:]

        init(_ model: Transformer) {
            config = model.config
            for e in model.params.entries {
                let w = UnsafeMutablePointer<Double>.allocate(capacity: e.count)
                let g = UnsafeMutablePointer<Double>.allocate(capacity: e.count)
                let v = model.params.view(e.name)
                for i in 0..<e.count { w[i] = Double(v[i]) }
                g.initialize(repeating: 0, count: e.count)
                weights[e.name] = w
                grads[e.name] = g
                counts[e.name] = e.count
            }
        }
        deinit { for p in weights.values { p.deallocate() }; for p in grads.values { p.deallocate() } }

        func backprop(frozen: Set<String> = []) -> Backprop<Double> {
            Backprop(config: config, tensors: TrainingTensors(
                weight: { [unowned self] in UnsafePointer(self.weights[$0]!) },
                gradient: { [unowned self] in frozen.contains($0) ? nil : self.grads[$0] }))
        }
    }

    static func checkWholeModel(_ model: Transformer, label: String) throws {
        let dm = DoubleModel(model)
        let B = 2, T = 5
        var rng = SplitMix64(seed: 99)
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(model.config.vocabSize)) }
        let scale = 1 / Double(B * (T - 1))
        let pass = dm.backprop()
        let loss = try pass.run(tokens: tokens, batch: B, seqLen: T, scale: scale)
        // The training forward agrees with the inference forward.
        let ref = try model.nll(tokens: tokens, batch: B, seqLen: T)
        #expect(abs(loss.sum - ref.sum) < 1e-4 * abs(ref.sum), "\(label): training NLL \(loss.sum) vs inference \(ref.sum)")
        let probe = dm.backprop(frozen: Set(dm.weights.keys))
        func meanNLL() -> Double { (try! probe.run(tokens: tokens, batch: B, seqLen: T, scale: 0)).sum * scale }
        var worst = 0.0, worstName = ""
        for (name, count) in dm.counts.sorted(by: { $0.key < $1.key }) {
            let w = dm.weights[name]!, g = dm.grads[name]!
            // About 40 entries of each tensor keep the test fast.
            let indices = stride(from: 0, to: count, by: max(1, count / 40))
            for i in indices {
                let v = w[i], h = 1e-5
                w[i] = v + h
                let up = meanNLL()
                w[i] = v - h
                let down = meanNLL()
                w[i] = v
                let f = (up - down) / (2 * h), a = g[i]
                let err = abs(a - f) / max(abs(a), abs(f), 1e-6)
                if err > worst { worst = err; worstName = "\(name)[\(i)] analytic \(a) numeric \(f)" }
            }
        }
        #expect(worst < 1e-4, "\(label): worst relative error \(worst) at \(worstName)")
    }

    @Test func wholeModelTiedEmbeddings() throws {
        try Self.checkWholeModel(try Transformer(randomWith: tinyConfig(layers: 2, vocab: 19), seed: 5, scale: 0.3), label: "tied")
    }

    @Test func wholeModelUntiedHead() throws {
        var c = tinyConfig(layers: 3, vocab: 23)
        c.tiedEmbeddings = false
        try Self.checkWholeModel(try Transformer(randomWith: c, seed: 6, scale: 0.3), label: "untied")
    }

    /// Qwen2's block: q/k/v biases (their gradients included) and RoPE on halves.
    @Test func wholeModelWithBiasesAndHalvesRoPE() throws {
        var c = tinyConfig(layers: 2, vocab: 21)
        c.tiedEmbeddings = false
        c.attentionBias = true
        c.ropeLayout = .halves
        c.architecture = "qwen2"
        try Self.checkWholeModel(try Transformer(randomWith: c, seed: 8, scale: 0.3), label: "qwen2-like")
    }

    /// attn_output and ffn_down biases (FLAP's compensation): the training forward adds them as the
    /// inference forward does, and their gradients (column sums of the residual's gradient) match
    /// finite differences.
    @Test func wholeModelWithOutputBiases() throws {
        var c = tinyConfig(layers: 2, vocab: 19)
        c.outputBias = true
        let model = try Transformer(randomWith: c, seed: 10, scale: 0.3)
        var rng = SplitMix64(seed: 11)
        for l in 0..<c.nLayers {
            for role in [TensorRole.attnOutputBias, .ffnDownBias] {
                let v = model.params.view(TensorNames.name(role, l))
                for i in 0..<v.count { v[i] = 0.5 * rng.nextSymmetric() }
            }
        }
        try Self.checkWholeModel(model, label: "output biases")
    }

    /// The Float path (C matmul kernels) gives the Double path's gradients to Float precision.
    @Test func floatGradientsMatchDouble() throws {
        let model = try Transformer(randomWith: tinyConfig(layers: 2, vocab: 29), seed: 7, scale: 0.3)
        let dm = DoubleModel(model)
        let B = 3, T = 6
        var rng = SplitMix64(seed: 3)
        let seqs = (0..<B).map { _ in (0..<T).map { _ in Int32(rng.next() % 29) } }
        _ = try dm.backprop().run(tokens: Array(seqs.joined()), batch: B, seqLen: T, scale: 1 / Double(B * (T - 1)))
        let r = try model.gradients(sequences: seqs, microBatch: 2)
        var worst: Float = 0, gmax: Float = 0
        for e in model.params.entries {
            let g = r.gradients.view(e.name), d = dm.grads[e.name]!
            for i in 0..<e.count {
                worst = max(worst, abs(g[i] - Float(d[i])))
                gmax = max(gmax, abs(g[i]))
            }
        }
        #expect(worst < 1e-5 * max(gmax, 1), "max |Δ| \(worst), max |g| \(gmax)")
        // Fisher from per-sequence passes: its mean gradient equals the batched one.
        let rf = try model.gradients(sequences: seqs, fisher: true)
        let fisher = try #require(rf.fisher)
        var worstF: Float = 0
        for i in 0..<r.gradients.totalCount {
            worstF = max(worstF, abs(rf.gradients.buffer[i] - r.gradients.buffer[i]))
            #expect(fisher.buffer[i] >= 0)
        }
        #expect(worstF < 1e-5 * max(gmax, 1))
    }

    /// LoRA adapters: gradients of A and B by finite differences, and merging reproduces the adapted output.
    @Test func loraAdapters() throws {
        let model = try Transformer(randomWith: tinyConfig(layers: 2, vocab: 17), seed: 8, scale: 0.3)
        let dm = DoubleModel(model)
        let names = [TensorNames.attnQ(0), TensorNames.attnV(1), TensorNames.ffnDown(0)]
        let shapes = names.map { n in model.params.entry(n)!.shape }
        let pass = dm.backprop(frozen: Set(dm.weights.keys))
        var lora: [String: LoRAAdapter<Double>] = [:]
        for (i, n) in names.enumerated() {
            let a = LoRAAdapter<Double>(inFeatures: shapes[i][1], outFeatures: shapes[i][0], rank: 2, alpha: 4,
                                        dropout: 0, seed: UInt64(i))
            a.b = Self.random(a.b.count, seed: UInt64(40 + i), scale: 0.3)
            pass.adapters[n] = a
            lora[n] = a
        }
        let B = 2, T = 4
        let tokens: [Int32] = [1, 5, 9, 2, 16, 3, 3, 7]
        _ = try pass.run(tokens: tokens, batch: B, seqLen: T, scale: 1)
        func total() -> Double { (try! pass.run(tokens: tokens, batch: B, seqLen: T, scale: 0)).sum }
        for n in names {
            let ad = lora[n]!
            let ga = ad.gradA, gb = ad.gradB, a0 = ad.a, b0 = ad.b
            let na = Self.numericGradient(a0) { v in ad.a = v; return total() }
            ad.a = a0
            let nb = Self.numericGradient(b0) { v in ad.b = v; return total() }
            ad.b = b0
            Self.check("lora A of \(n)", analytic: ga, numeric: na)
            Self.check("lora B of \(n)", analytic: gb, numeric: nb)
        }
        // Merged weights without adapters give the adapted loss.
        let adapted = total()
        for (i, n) in names.enumerated() { lora[n]!.merge(into: dm.weights[n]!, rows: shapes[i][0]) }
        pass.adapters = [:]
        #expect(abs(total() - adapted) < 1e-9 * abs(adapted))
    }

    @Test func rejectsBadShapes() throws {
        let model = try Transformer(randomWith: tinyConfig(), seed: 1)
        let pass = model.backprop(gradients: nil)
        let count = try #require(throws: PruneError.self) { try pass.run(tokens: [1, 2, 3], batch: 2, seqLen: 2, scale: 1) }
        #expect(count.code == .shapeMismatch && count.message.contains("3 tokens do not make 2 sequences of 2"), "\(count.message)")
        let short = try #require(throws: PruneError.self) { try pass.run(tokens: [1], batch: 1, seqLen: 1, scale: 1) }
        #expect(short.code == .shapeMismatch && short.message.contains("(T ≥ 2)"), "\(short.message)")
        let id = try #require(throws: PruneError.self) { try pass.run(tokens: [1, 99], batch: 1, seqLen: 2, scale: 1) }
        #expect(id.code == .outOfRange && id.message.contains("token id '99' at index 1"), "\(id.message)")
    }
}
