import Foundation

/// Optimal Brain Surgeon weight compensation for input columns removed from a linear layer (the
/// update step of ZipLM, Kurtić et al. 2023, "ZipLM: Inference-Aware Structured Pruning of Language
/// Models", and SlimGPT, Ling et al. 2024, arXiv 2412.18110; OBS: Hassibi & Stork 1993).
///
/// Structured pruning removes whole input columns R of a weight W (n×k): the columns of one head
/// (headDim wide) from attn_output, one MLP channel from ffn_down. The kept columns K can then be
/// changed so that the layer's output on the calibration inputs X (tokens × k) changes least:
///
///     min over W_K'  ‖X·Wᵀ − X_K·W_K'ᵀ‖²_F,   H = XᵀX (`InputHessian`),
///
/// whose solution is W_K' = W·H[:, K]·H_KK⁻¹ = W_K + W_R·H_RK·H_KK⁻¹: OBS for a set of weights
/// per row, every row with the same H. The reconstruction error of any W' that is zero at R is
/// tr((W − W')·H·(W − W')ᵀ); cutting alone (W' = W with R zeroed) costs tr(W_R·H_RR·W_Rᵀ), the
/// update brings it down to tr(W_R·S·W_Rᵀ) with S = H_RR − H_RK·H_KK⁻¹·H_KR (the Schur complement).
///
/// Dampening as in GPTQ and SparseGPT (Frantar & Alistarh 2023): H_λ = H + λI with
/// λ = damp·mean(diag H_KK), so that H_KK + λI is positive definite even when the calibration
/// tokens do not span the columns. The update with H_λ is W_K' = W_K + W_R·H_RK·(H_KK + λI)⁻¹
/// (= W·H_λ[:, K]·(H_λ)_KK⁻¹; the off-diagonal H_RK is undamped). It moves from the exact
/// optimum (damp → 0) to cutting alone (damp → ∞) and never does worse than cutting: with
/// G = W_R·H_RK and A = H_KK + λI, its error minus the cut error is
/// tr(G·A⁻¹·H_KK·A⁻¹·Gᵀ) − 2·tr(G·A⁻¹·Gᵀ) ≤ −tr(G·A⁻¹·Gᵀ) ≤ 0, since H_KK ≤ A.
/// (Damping the undamped H[:, K]·Wᵀ instead, ridge regression, would shrink W_K toward zero as
/// damp grows.)
///
/// The removed set is solved for at once, in Double: one Cholesky factorisation of H_KK + λI
/// and n right-hand sides H_KR·W_Rᵀ, about (1/3)|K|³ + 2n|K|² + n|K||R| flops. This picks no
/// columns; the caller says which are removed.
public enum OBSCompensation {
    /// The kept columns of `weight` (n×k row-major) after the OBS update for removing the others:
    /// an n × keep.count row-major matrix, columns in `keep` order.
    ///
    /// - hessian: Σ xᵀx of the layer's inputs, k wide.
    /// - keep: the kept columns, ascending, without repeats, in 0..<k.
    /// - damp: > 0, λ = damp·mean(diag H_KK) added to the diagonal of H (the recipe's
    ///   `compensator.damp`, usually 0.01).
    ///
    /// Returns the kept columns unchanged when nothing is removed or H_KK's diagonal is all zero
    /// (no activations). Throws `.outOfRange` when H_KK + λI is not positive definite to rounding
    /// (a larger damp fixes it).
    public static func compensate(weight: UnsafePointer<Float>, rows n: Int, cols k: Int, hessian: InputHessian,
                                  keep: [Int], damp: Double) throws -> [Float] {
        guard n >= 0, k >= 0 else {
            throw PruneError(.invalidArgument, "OBS compensation: a weight of \(n)×\(k) has a negative size")
        }
        guard damp > 0, damp.isFinite else {
            throw PruneError(.invalidArgument, "compensator.damp '\(damp)' is not a positive number; it scales the mean diagonal of the input Hessian added to its diagonal: use a small positive value such as 0.01")
        }
        guard hessian.cols == k else {
            throw PruneError(.shapeMismatch, "OBS compensation: the input Hessian is \(hessian.cols)×\(hessian.cols) but the weight has \(k) columns; collect it from this layer's inputs")
        }
        if let c = keep.first(where: { !(0..<k).contains($0) }) {
            throw PruneError(.outOfRange, "OBS compensation: kept column '\(c)' is outside 0..<\(k), the weight's columns")
        }
        if let i = keep.indices.dropFirst().first(where: { keep[$0] <= keep[$0 - 1] }) {
            throw PruneError(.invalidArgument, "OBS compensation: kept columns must ascend without repeats, but '\(keep[i])' follows '\(keep[i - 1])'")
        }
        let m = keep.count
        var kept = [Float](repeating: 0, count: n * m)
        for r in 0..<n { for (a, c) in keep.enumerated() { kept[r * m + a] = weight[r * k + c] } }
        let removed = removedColumns(keep, k)
        guard m > 0, n > 0, !removed.isEmpty else { return kept }

        let h = hessian.values
        if let bad = h.firstIndex(where: { !$0.isFinite }) {
            throw PruneError(.invalidArgument, "OBS compensation: the input Hessian has a NaN or infinite entry at (\(bad / k), \(bad % k)); check the calibration activations")
        }
        let meanDiagonal = keep.reduce(0.0) { $0 + h[$1 * k + $1] } / Double(m)
        guard meanDiagonal > 0 else { return kept }
        let lambda = damp * meanDiagonal

        // A = H_KK + λI, factored in place.
        var a = [Double](repeating: 0, count: m * m)
        for (i, ci) in keep.enumerated() {
            for (j, cj) in keep.enumerated() { a[i * m + j] = h[ci * k + cj] }
            a[i * m + i] += lambda
        }
        do { try Cholesky.factor(&a, n: m) } catch let e as PruneError {
            throw PruneError(e.code, "OBS compensation of a \(n)×\(k) weight keeping \(m) columns: \(e.message); in the recipe that is compensator.damp, now \(damp)")
        }

        // Y = W_R·H_RK (n × m): row r is the right-hand side H_KR·W_R[r]ᵀ.
        let nr = removed.count
        var wr = [Double](repeating: 0, count: n * nr), hrk = [Double](repeating: 0, count: nr * m)
        for r in 0..<n { for (j, c) in removed.enumerated() { wr[r * nr + j] = Double(weight[r * k + c]) } }
        for (j, c) in removed.enumerated() { for (i, ci) in keep.enumerated() { hrk[j * m + i] = h[c * k + ci] } }
        var y = [Double](repeating: 0, count: n * m)
        wr.withUnsafeBufferPointer { wp in
            hrk.withUnsafeBufferPointer { hp in
                y.withUnsafeMutableBufferPointer { yp in
                    Cholesky.multiplyAdd(m: n, n: m, k: nr, a: wp.baseAddress!, lda: nr, b: hp.baseAddress!, ldb: m,
                                         c: yp.baseAddress!, ldc: m)
                }
            }
        }
        // Y ← Y·A⁻¹ (A symmetric: each row solved as a right-hand side), then W_K' = W_K + Y.
        try Cholesky.solve(factor: a, n: m, &y, rhs: n)
        for r in 0..<n {
            for (i, c) in keep.enumerated() { kept[r * m + i] = Float(Double(weight[r * k + c]) + y[r * m + i]) }
        }
        return kept
    }

    /// tr((W − W')·H·(W − W')ᵀ) = ‖X·Wᵀ − X·W'ᵀ‖²_F for H = XᵀX: the squared change of the layer's
    /// outputs on the calibration inputs when W (`original`) becomes W' (`updated`, zeros at the
    /// removed columns), both n×k row-major. Computed in Double, 64 rows at a time.
    public static func reconstructionError(original: UnsafePointer<Float>, updated: UnsafePointer<Float>, rows n: Int, cols k: Int,
                                           hessian: InputHessian) -> Double {
        precondition(n >= 0 && k >= 0, "OBSCompensation.reconstructionError: negative size \(n)×\(k)")
        precondition(hessian.cols == k, "OBSCompensation.reconstructionError: the Hessian is \(hessian.cols) wide, the weight \(k)")
        guard n > 0, k > 0 else { return 0 }
        let block = 64
        var d = [Double](repeating: 0, count: block * k), t = [Double](repeating: 0, count: block * k)
        var total = 0.0
        hessian.values.withUnsafeBufferPointer { h in
            d.withUnsafeMutableBufferPointer { dp in
                t.withUnsafeMutableBufferPointer { tp in
                    for r0 in stride(from: 0, to: n, by: block) {
                        let rows = min(block, n - r0)
                        for i in 0..<(rows * k) {
                            dp[i] = Double(original[r0 * k + i]) - Double(updated[r0 * k + i])
                            tp[i] = 0
                        }
                        // T = D·H; the error of row r is D[r]·T[r].
                        Cholesky.multiplyAdd(m: rows, n: k, k: k, a: dp.baseAddress!, lda: k, b: h.baseAddress!, ldb: k,
                                             c: tp.baseAddress!, ldc: k)
                        for r in 0..<rows { total += Cholesky.dot(dp.baseAddress! + r * k, tp.baseAddress! + r * k, k) }
                    }
                }
            }
        }
        return total
    }

    /// The columns of 0..<k not in `keep` (ascending, unique), ascending.
    static func removedColumns(_ keep: [Int], _ k: Int) -> [Int] {
        var kept = [Bool](repeating: false, count: k)
        for c in keep { kept[c] = true }
        return (0..<k).filter { !kept[$0] }
    }
}
