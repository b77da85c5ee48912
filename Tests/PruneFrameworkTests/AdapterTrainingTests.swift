import Foundation
import Testing
@testable import PruneFramework

/// The distillation loss and SPP's sparsity-preserving adapter: gradients by finite differences
/// (Double), merges that reproduce the adapted model, and zeros that stay zero.
@Suite struct AdapterTrainingTests {
    typealias B = BackpropTests

    /// (1−α)·CE + α·τ²·KL(softmax(t/τ) ‖ softmax(z/τ)), written out from the definition.
    static func mixedLoss(_ z: [Double], _ t: [Double], target: Int, tau: Double, alpha: Double) -> Double {
        func logSoftmax(_ x: [Double]) -> [Double] {
            let m = x.max()!, s = log(x.reduce(0) { $0 + exp($1 - m) })
            return x.map { $0 - m - s }
        }
        let ce = -logSoftmax(z)[target]
        let ls = logSoftmax(z.map { $0 / tau }), lt = logSoftmax(t.map { $0 / tau })
        let kl = zip(lt, ls).reduce(0) { $0 + exp($1.0) * ($1.0 - $1.1) }
        return (1 - alpha) * ce + alpha * tau * tau * kl
    }

    @Test(arguments: [(1.0, 0.0), (1.0, 1.0), (2.5, 0.3), (0.5, 0.7)])
    func distillationKernel(tau: Double, alpha: Double) {
        let n = 11, target = 3
        let z0 = B.random(n, seed: 21, scale: 3), t = B.random(n, seed: 22, scale: 3)
        var g = z0
        let kd = Distillation(temperature: tau, alpha: alpha)
        let r = distillationBackward(&g, teacher: t, count: n, target: target, settings: kd, scale: 0.7)
        let want = Self.mixedLoss(z0, t, target: target, tau: tau, alpha: alpha)
        #expect(abs(r.loss - want) < 1e-12 * max(1, abs(want)), "loss \(r.loss) vs \(want)")
        #expect(r.kl >= 0 && abs(r.ce - crossEntropyForward(z0, count: n, target: target)) < 1e-12)
        B.check("distillation τ=\(tau) α=\(alpha)", analytic: g,
                numeric: B.numericGradient(z0) { 0.7 * Self.mixedLoss($0, t, target: target, tau: tau, alpha: alpha) })
    }

    /// The KL divergence to the student's own logits is zero, and so is its gradient.
    @Test func distillingFromItselfIsFlat() {
        let n = 7
        let z0 = B.random(n, seed: 23, scale: 2)
        var g = z0
        let r = distillationBackward(&g, teacher: z0, count: n, target: 0, settings: Distillation(temperature: 2, alpha: 1), scale: 1)
        #expect(abs(r.kl) < 1e-12 && g.allSatisfy { abs($0) < 1e-12 }, "kl \(r.kl), gradient \(g)")
    }

    /// The whole training pass with the distillation loss: every weight's gradient by finite differences.
    @Test func wholeModelDistillationGradient() throws {
        let model = try Transformer(randomWith: tinyConfig(layers: 2, vocab: 19), seed: 31, scale: 0.3)
        let dm = B.DoubleModel(model)
        let Bsz = 2, T = 5, V = 19
        var rng = SplitMix64(seed: 5)
        let tokens = (0..<(Bsz * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        let teacher = B.random(Bsz * T * V, seed: 32, scale: 2)
        let kd = Distillation(temperature: 2, alpha: 0.6)
        let pass = dm.backprop()
        pass.distillation = kd
        _ = try pass.run(tokens: tokens, batch: Bsz, seqLen: T, scale: 1, teacher: teacher)
        let probe = dm.backprop(frozen: Set(dm.weights.keys))
        probe.distillation = kd
        func loss() -> Double { (try! probe.run(tokens: tokens, batch: Bsz, seqLen: T, scale: 0, teacher: teacher)).sum }
        // The loss is the definition's, summed over the predicted positions.
        let logits = try model.logits(tokens: tokens, batch: Bsz, seqLen: T).map(Double.init)
        var want = 0.0
        for b in 0..<Bsz {
            for p in 0..<(T - 1) {
                let r = b * T + p
                want += Self.mixedLoss(Array(logits[(r * V)..<((r + 1) * V)]), Array(teacher[(r * V)..<((r + 1) * V)]),
                                       target: Int(tokens[r + 1]), tau: 2, alpha: 0.6)
            }
        }
        #expect(abs(loss() - want) < 1e-4 * abs(want), "pass loss \(loss()) vs definition \(want)")
        var worst = 0.0, at = ""
        for (name, count) in dm.counts.sorted(by: { $0.key < $1.key }) {
            let w = dm.weights[name]!, g = dm.grads[name]!
            for i in stride(from: 0, to: count, by: max(1, count / 25)) {
                let v = w[i], h = 1e-5
                w[i] = v + h
                let up = loss()
                w[i] = v - h
                let down = loss()
                w[i] = v
                let f = (up - down) / (2 * h), err = abs(g[i] - f) / max(abs(g[i]), abs(f), 1e-6)
                if err > worst { worst = err; at = "\(name)[\(i)] analytic \(g[i]) numeric \(f)" }
            }
        }
        #expect(worst < 1e-4, "worst relative error \(worst) at \(at)")
    }

    @Test func teacherLogitsNeedDistillationSettings() throws {
        let model = try Transformer(randomWith: tinyConfig(layers: 1, vocab: 13), seed: 1)
        let pass = model.backprop(gradients: nil)
        let t = [Float](repeating: 0, count: 2 * 13)
        let e = try #require(throws: PruneError.self) {
            try t.withUnsafeBufferPointer { try pass.run(tokens: [1, 2], batch: 1, seqLen: 2, scale: 1, teacher: $0.baseAddress) }
        }
        #expect(e.message.contains("without distillation settings"), "\(e.message)")
    }

    /// Zeroes about half of the named weights (every weight whose index hash is even).
    static func sparsify(_ dm: B.DoubleModel, _ names: [String]) {
        for n in names {
            let w = dm.weights[n]!
            for i in 0..<dm.counts[n]! where (i &* 2_654_435_761) % 7 < 3 { w[i] = 0 }
        }
    }

    /// SPP's adapter: gradients of A and c by finite differences; the merged weights give the
    /// adapted loss and keep every zero.
    @Test func sppAdapter() throws {
        let model = try Transformer(randomWith: tinyConfig(layers: 2, vocab: 17), seed: 9, scale: 0.3)
        let dm = B.DoubleModel(model)
        let names = [TensorNames.attnQ(0), TensorNames.attnOutput(1), TensorNames.ffnDown(0), TensorNames.ffnUp(1)]
        Self.sparsify(dm, names)
        let shapes = names.map { model.params.entry($0)!.shape }
        let pass = dm.backprop(frozen: Set(dm.weights.keys))
        var spp: [String: SPPAdapter<Double>] = [:]
        for (i, n) in names.enumerated() {
            // 3 groups of rows: uneven for widths that 3 does not divide.
            let a = SPPAdapter<Double>(inFeatures: shapes[i][1], outFeatures: shapes[i][0], rank: 3, alpha: 6, dropout: 0, seed: UInt64(i))
            a.c = B.random(a.c.count, seed: UInt64(50 + i), scale: 0.5)
            pass.adapters[n] = a
            spp[n] = a
        }
        let tokens: [Int32] = [1, 5, 9, 2, 16, 3, 3, 7]
        func total() -> Double { (try! pass.run(tokens: tokens, batch: 2, seqLen: 4, scale: 0)).sum }
        _ = try pass.run(tokens: tokens, batch: 2, seqLen: 4, scale: 1)
        for n in names {
            let ad = spp[n]!
            let ga = ad.gradA, gc = ad.gradC, a0 = ad.a, c0 = ad.c
            let na = B.numericGradient(a0) { v in ad.a = v; return total() }
            ad.a = a0
            let nc = B.numericGradient(c0) { v in ad.c = v; return total() }
            ad.c = c0
            B.check("spp A of \(n)", analytic: ga, numeric: na)
            B.check("spp c of \(n)", analytic: gc, numeric: nc)
        }
        let adapted = total()
        for (i, n) in names.enumerated() {
            let w = dm.weights[n]!, count = dm.counts[n]!
            let zeros = (0..<count).filter { w[$0] == 0 }
            spp[n]!.merge(into: w, rows: shapes[i][0])
            #expect(!zeros.isEmpty && zeros.allSatisfy { w[$0] == 0 }, "\(n): a zero was filled")
            #expect((0..<count).filter { w[$0] == 0 }.count == zeros.count, "\(n): new zeros")
        }
        pass.adapters = [:]
        #expect(abs(total() - adapted) < 1e-9 * abs(adapted))
    }

    /// The row groups cover every output row once, in order, for any n and r.
    @Test func sppRowGroups() {
        for (n, r) in [(10, 3), (16, 16), (5, 8), (1536, 16), (7, 1)] {
            let a = SPPAdapter<Float>(inFeatures: 2, outFeatures: n, rank: r, alpha: 1, dropout: 0, seed: 0)
            let all = (0..<r).flatMap { Array(a.rows(ofGroup: $0)) }
            #expect(all == Array(0..<n), "n \(n) r \(r)")
            for g in 0..<r { for j in a.rows(ofGroup: g) { #expect(j * r / n == g) } }
        }
    }
}
