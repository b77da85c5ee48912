import Foundation
import Testing
@testable import PruneFramework

/// Cholesky factorisation and solves, the input Hessian, and OBS weight compensation against
/// closed forms and direct computation on random data.
@Suite struct OBSCompensationTests {
    // MARK: - Helpers

    /// rows × cols values uniform in [-1, 1).
    static func random(_ rows: Int, _ cols: Int, _ rng: inout SplitMix64) -> [Float] {
        (0..<(rows * cols)).map { _ in rng.nextSymmetric() }
    }

    /// A (m×n) · B (n×p) in Double, row-major.
    static func product(_ a: [Double], _ b: [Double], m: Int, n: Int, p: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * p)
        for i in 0..<m { for q in 0..<n where a[i * n + q] != 0 { for j in 0..<p { c[i * p + j] += a[i * n + q] * b[q * p + j] } } }
        return c
    }

    /// A random symmetric positive-definite n×n matrix BᵀB + εI with B (2n × n) uniform, so well conditioned.
    static func spd(_ n: Int, seed: UInt64, epsilon: Double = 0.1) -> [Double] {
        var rng = SplitMix64(seed: seed)
        let b = random(2 * n, n, &rng).map(Double.init)
        var bt = [Double](repeating: 0, count: n * 2 * n)
        for i in 0..<(2 * n) { for j in 0..<n { bt[j * 2 * n + i] = b[i * n + j] } }
        var a = product(bt, b, m: n, n: 2 * n, p: n)
        for i in 0..<n { a[i * n + i] += epsilon }
        return a
    }

    /// X (rows × k) = Z·M for Z, M uniform: columns correlated, so H = XᵀX is far from diagonal.
    /// Rounded to multiples of 1/8 (|x| < 16), so that every product and sum of at most 256 of them
    /// is exact in f32: `InputHessian` is then exactly XᵀX, and the error checks compare the
    /// compensation's arithmetic alone (the f32 Hessian's own rounding is checked separately).
    static func correlatedInputs(rows: Int, k: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let z = random(rows, k, &rng).map(Double.init), m = random(k, k, &rng).map(Double.init)
        let x = product(z, m, m: rows, n: k, p: k).map { Float(($0 * 8).rounded() / 8) }
        precondition(x.allSatisfy { abs($0) < 16 }, "inputs too large to sum exactly in f32")
        return x
    }

    static func hessian(_ x: [Float], rows: Int, k: Int) -> InputHessian {
        var h = InputHessian(cols: k)
        x.withUnsafeBufferPointer { h.add($0.baseAddress!, rows: rows) }
        return h
    }

    /// Solves A·X = B (A n×n, B n×p) by Gaussian elimination with partial pivoting, apart from Cholesky.
    static func gaussSolve(_ a: [Double], _ b: [Double], n: Int, p: Int) -> [Double] {
        var a = a, b = b
        for col in 0..<n {
            let piv = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
            if piv != col {
                for j in 0..<n { a.swapAt(col * n + j, piv * n + j) }
                for j in 0..<p { b.swapAt(col * p + j, piv * p + j) }
            }
            for r in (col + 1)..<n {
                let f = a[r * n + col] / a[col * n + col]
                guard f != 0 else { continue }
                for j in col..<n { a[r * n + j] -= f * a[col * n + j] }
                for j in 0..<p { b[r * p + j] -= f * b[col * p + j] }
            }
        }
        for col in stride(from: n - 1, through: 0, by: -1) {
            for j in 0..<p {
                var s = b[col * p + j]
                for q in (col + 1)..<n { s -= a[col * n + q] * b[q * p + j] }
                b[col * p + j] = s / a[col * n + col]
            }
        }
        return b
    }

    /// tr(W_R·S·W_Rᵀ), S = H_RR − H_RK·H_KK⁻¹·H_KR: the least error of any update of the kept columns.
    static func schurError(_ w: [Float], n: Int, k: Int, _ h: [Double], keep: [Int]) -> Double {
        let removed = (0..<k).filter { !keep.contains($0) }
        let m = keep.count, r = removed.count
        let hkk = keep.flatMap { i in keep.map { h[i * k + $0] } }
        let hkr = keep.flatMap { i in removed.map { h[i * k + $0] } }
        let x = gaussSolve(hkk, hkr, n: m, p: r)  // H_KK⁻¹·H_KR, m×r
        var s = removed.flatMap { i in removed.map { h[i * k + $0] } }
        for i in 0..<r { for j in 0..<r { for q in 0..<m { s[i * r + j] -= hkr[q * r + i] * x[q * r + j] } } }
        var total = 0.0
        for row in 0..<n {
            let wr = removed.map { Double(w[row * k + $0]) }
            for i in 0..<r { for j in 0..<r { total += wr[i] * s[i * r + j] * wr[j] } }
        }
        return total
    }

    /// ‖X·Wᵀ − X·W'ᵀ‖²_F computed from X directly, in Double.
    static func directError(_ x: [Float], rows: Int, k: Int, _ w: [Float], _ w2: [Float], n: Int) -> Double {
        var total = 0.0
        for t in 0..<rows {
            for o in 0..<n {
                var s = 0.0
                for c in 0..<k { s += Double(x[t * k + c]) * (Double(w[o * k + c]) - Double(w2[o * k + c])) }
                total += s * s
            }
        }
        return total
    }

    /// W with the compensated kept columns in place and zeros at the removed ones.
    static func scatter(_ kept: [Float], n: Int, k: Int, keep: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: n * k)
        for r in 0..<n { for (a, c) in keep.enumerated() { out[r * k + c] = kept[r * keep.count + a] } }
        return out
    }

    static func compensate(_ w: [Float], n: Int, k: Int, _ h: InputHessian, keep: [Int], damp: Double) throws -> [Float] {
        try w.withUnsafeBufferPointer {
            try OBSCompensation.compensate(weight: $0.baseAddress!, rows: n, cols: k, hessian: h, keep: keep, damp: damp)
        }
    }

    static func error(_ w: [Float], _ w2: [Float], n: Int, k: Int, _ h: InputHessian) -> Double {
        w.withUnsafeBufferPointer { a in
            w2.withUnsafeBufferPointer { b in
                OBSCompensation.reconstructionError(original: a.baseAddress!, updated: b.baseAddress!, rows: n, cols: k, hessian: h)
            }
        }
    }

    static func relative(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(b), .leastNormalMagnitude) }

    // MARK: - Cholesky

    /// Sizes around the 64-column panel and large enough for the threaded update; right-hand sides
    /// fewer than, equal to and more than a block of 16.
    @Test(arguments: [1, 2, 7, 63, 64, 65, 130, 300])
    func choleskyFactorsAndSolves(n: Int) throws {
        let a = Self.spd(n, seed: UInt64(n))
        var l = a
        try Cholesky.factor(&l, n: n)
        // L·Lᵀ = A (lower triangle of l), and the upper triangle holds Lᵀ.
        let scale = a.reduce(0) { max($0, abs($1)) }
        for i in 0..<n {
            for j in 0...i {
                var s = 0.0
                for p in 0...j { s += l[i * n + p] * l[j * n + p] }
                #expect(abs(s - a[i * n + j]) <= 1e-12 * scale, "L·Lᵀ at (\(i), \(j)) for n = \(n)")
                #expect(l[j * n + i] == l[i * n + j])
            }
        }
        for rhs in [1, 16, 37] {
            var rng = SplitMix64(seed: UInt64(100 * n + rhs))
            let b = Self.random(rhs, n, &rng).map(Double.init)
            var x = b
            try Cholesky.solve(factor: l, n: n, &x, rhs: rhs)
            for q in 0..<rhs {
                var num = 0.0, den = 0.0
                for i in 0..<n {
                    var s = 0.0
                    for j in 0..<n { s += a[i * n + j] * x[q * n + j] }
                    num += (s - b[q * n + i]) * (s - b[q * n + i])
                    den += b[q * n + i] * b[q * n + i]
                }
                #expect((num / den).squareRoot() <= 1e-9, "residual of right-hand side \(q) of \(rhs), n = \(n)")
            }
        }
    }

    @Test func choleskyRefusesMatricesThatAreNotPositiveDefinite() throws {
        var small = [1.0, 2, 2, 1]  // eigenvalues 3 and −1
        let e = #expect(throws: PruneError.self) { try Cholesky.factor(&small, n: 2) }
        #expect(e?.code == .outOfRange)
        #expect(e?.message.contains("pivot 1") == true)
        #expect(e?.message.contains("damp") == true)

        // A negative eigenvalue past the first panel: the identity with −1 at 70.
        let n = 100
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { a[i * n + i] = i == 70 ? -1 : 1 }
        let e2 = #expect(throws: PruneError.self) { try Cholesky.factor(&a, n: n) }
        #expect(e2?.message.contains("pivot 70") == true)
        #expect(e2?.message.contains("damp") == true)

        var bad = [1.0, 0, 0]
        #expect(throws: PruneError.self) { try Cholesky.factor(&bad, n: 2) }
        var empty: [Double] = []
        try Cholesky.factor(&empty, n: 0)
    }

    // MARK: - InputHessian

    @Test func inputHessianMatchesNaiveSumOverUnevenChunks() {
        let rows = 1000, k = 37
        var rng = SplitMix64(seed: 11)
        let x = Self.random(rows, k, &rng)
        var h = InputHessian(cols: k)
        var start = 0
        x.withUnsafeBufferPointer { p in
            for chunk in [1, 300, 699] {
                h.add(p.baseAddress! + start * k, rows: chunk)
                start += chunk
            }
        }
        #expect(h.count == rows)
        #expect(h.cols == k)
        #expect(h.values.count == k * k)
        var naive = [Double](repeating: 0, count: k * k)
        for t in 0..<rows { for i in 0..<k { for j in 0..<k { naive[i * k + j] += Double(x[t * k + i]) * Double(x[t * k + j]) } } }
        for i in 0..<k {
            for j in 0..<k {
                // Relative to √(H_ii·H_jj), the scale of entry (i, j) (off-diagonal sums cancel).
                let scale = (naive[i * k + i] * naive[j * k + j]).squareRoot()
                #expect(abs(h.values[i * k + j] - naive[i * k + j]) <= 1e-4 * scale, "H at (\(i), \(j))")
            }
        }
        var empty = InputHessian(cols: 3)
        x.withUnsafeBufferPointer { empty.add($0.baseAddress!, rows: 0) }
        #expect(empty.count == 0 && empty.values == [Double](repeating: 0, count: 9))
    }

    // MARK: - OBS compensation

    /// Removing 12 of 48 columns, scattered or one head-style group of 12: the update beats cutting,
    /// reaches the Schur-complement optimum with a tiny damp, and the trace form of the error is the
    /// squared output change computed from X.
    @Test(arguments: [false, true])
    func compensationReachesTheClosedFormOptimum(contiguous: Bool) throws {
        let rows = 512, k = 48, n = 20
        let x = Self.correlatedInputs(rows: rows, k: k, seed: 21)
        let h = Self.hessian(x, rows: rows, k: k)
        var rng = SplitMix64(seed: 22)
        let w = Self.random(n, k, &rng)
        let removed: Set<Int>
        if contiguous {
            removed = Set(24..<36)
        } else {
            var pick = SplitMix64(seed: 23)
            removed = Set((0..<k).shuffled(using: &pick).prefix(12))
        }
        let keep = (0..<k).filter { !removed.contains($0) }

        let cut = Self.scatter((0..<n).flatMap { r in keep.map { w[r * k + $0] } }, n: n, k: k, keep: keep)
        let cutError = Self.error(w, cut, n: n, k: k, h)
        #expect(Self.relative(cutError, Self.directError(x, rows: rows, k: k, w, cut, n: n)) <= 1e-6)

        let tiny = try Self.compensate(w, n: n, k: k, h, keep: keep, damp: 1e-10)
        #expect(tiny.count == n * keep.count)
        let updated = Self.scatter(tiny, n: n, k: k, keep: keep)
        let err = Self.error(w, updated, n: n, k: k, h)
        let closed = Self.schurError(w, n: n, k: k, h.values, keep: keep)
        let direct = Self.directError(x, rows: rows, k: k, w, updated, n: n)
        #expect(err < cutError)
        #expect(Self.relative(err, closed) <= 1e-6, "trace error \(err), closed form \(closed)")
        #expect(Self.relative(err, direct) <= 1e-6, "trace error \(err), direct \(direct)")

        // The usual damp: still better than cutting, not better than the optimum.
        let damped = Self.scatter(try Self.compensate(w, n: n, k: k, h, keep: keep, damp: 0.01), n: n, k: k, keep: keep)
        let dampedError = Self.error(w, damped, n: n, k: k, h)
        #expect(dampedError < cutError)
        #expect(dampedError >= closed * (1 - 1e-9))
        #expect(Self.relative(dampedError, Self.directError(x, rows: rows, k: k, w, damped, n: n)) <= 1e-6)
    }

    @Test func compensationValidatesItsArguments() throws {
        let k = 8, n = 3
        var rng = SplitMix64(seed: 31)
        let x = Self.random(64, k, &rng), w = Self.random(n, k, &rng)
        let h = Self.hessian(x, rows: 64, k: k)
        for damp in [0.0, -0.01, .nan, .infinity] {
            let e = #expect(throws: PruneError.self) { try Self.compensate(w, n: n, k: k, h, keep: [0, 1, 2], damp: damp) }
            #expect(e?.code == .invalidArgument)
            #expect(e?.message.contains("compensator.damp") == true, "damp \(damp)")
        }
        for keep in [[0, 8], [-1, 2], [1, 99]] {
            let e = #expect(throws: PruneError.self) { try Self.compensate(w, n: n, k: k, h, keep: keep, damp: 0.01) }
            #expect(e?.code == .outOfRange, "keep \(keep)")
        }
        for keep in [[2, 1], [1, 1, 3]] {
            let e = #expect(throws: PruneError.self) { try Self.compensate(w, n: n, k: k, h, keep: keep, damp: 0.01) }
            #expect(e?.code == .invalidArgument, "keep \(keep)")
        }
        let e = #expect(throws: PruneError.self) { try Self.compensate(w, n: n, k: k, InputHessian(cols: 7), keep: [0], damp: 0.01) }
        #expect(e?.code == .shapeMismatch)

        // A "Hessian" that is not positive semi-definite: H_KK + λI is indefinite, and the error
        // says to raise the damp.
        var indefinite = InputHessian(cols: 3)
        indefinite.values = [1, 2, 0, 2, 1, 0, 0, 0, 1]
        let e2 = #expect(throws: PruneError.self) {
            try Self.compensate([1, 2, 3], n: 1, k: 3, indefinite, keep: [0, 1], damp: 0.01)
        }
        #expect(e2?.code == .outOfRange)
        #expect(e2?.message.contains("compensator.damp") == true)
        indefinite.values[4] = .nan
        #expect(throws: PruneError.self) { try Self.compensate([1, 2, 3], n: 1, k: 3, indefinite, keep: [0, 1], damp: 0.01) }

        // No activations, or nothing removed: the kept columns come back unchanged.
        let keep = [0, 2, 5]
        let kept = (0..<n).flatMap { r in keep.map { w[r * k + $0] } }
        #expect(try Self.compensate(w, n: n, k: k, InputHessian(cols: k), keep: keep, damp: 0.01) == kept)
        #expect(try Self.compensate(w, n: n, k: k, h, keep: Array(0..<k), damp: 0.01) == w)
        #expect(try Self.compensate(w, n: n, k: k, h, keep: [], damp: 0.01).isEmpty)
    }

    /// Layer-sized shapes with fewer tokens than columns, so only the damping makes H_KK + λI
    /// positive definite: shape, finite values, and an error below cutting. No timing.
    @Test func compensationAtLayerSize() throws {
        let k = 2048, n = 64, rows = 1024
        var rng = SplitMix64(seed: 41)
        let x = Self.random(rows, k, &rng), w = Self.random(n, k, &rng)
        var h = InputHessian(cols: k)
        x.withUnsafeBufferPointer { p in
            h.add(p.baseAddress!, rows: 700)
            h.add(p.baseAddress! + 700 * k, rows: rows - 700)
        }
        let keep = Array((0..<k).shuffled(using: &rng).prefix(1600)).sorted()
        let kept = try Self.compensate(w, n: n, k: k, h, keep: keep, damp: 0.01)
        #expect(kept.count == n * 1600)
        let finite = kept.allSatisfy { $0.isFinite }
        #expect(finite)
        let cut = Self.scatter((0..<n).flatMap { r in keep.map { w[r * k + $0] } }, n: n, k: k, keep: keep)
        let updated = Self.scatter(kept, n: n, k: k, keep: keep)
        #expect(Self.error(w, updated, n: n, k: k, h) < Self.error(w, cut, n: n, k: k, h))
    }
}
