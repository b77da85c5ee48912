import Dispatch
import Foundation

/// Cholesky factorisation A = L·Lᵀ of symmetric positive-definite matrices in Double, and solves
/// A·x = b with the factor, with no external library (the OBS weight compensation of pruned linear
/// layers solves with a damped input Hessian; see `OBSCompensation`).
///
/// Matrices are n×n row-major. `factor` reads the lower triangle of A only and leaves L in the
/// lower triangle and Lᵀ in the upper one (they share the diagonal), so that forward substitution
/// (L·y = b) and back substitution (Lᵀ·x = y) both read rows: the loops run along memory.
///
/// The factorisation is blocked and right-looking, LAPACK's dpotrf order written by rows: for each
/// panel of `panel` columns, the diagonal block is factored unblocked, the rows below it are solved
/// against that block's Lᵀ (one row per task), and the trailing lower triangle is updated,
/// A₂₂ −= L₂₁·L₂₁ᵀ, with a 4×4 register-tiled kernel over a transposed copy of the panel; the
/// update holds (1/3)n³ of the (1/3)n³ + O(n²·panel) flops and runs on every core. Solves take
/// `rhsBlock` right-hand sides at a time, transposed so that each row of L updates all of them in
/// SIMD registers, and the blocks run concurrently.
public enum Cholesky {
    /// Columns per panel of the blocked factorisation.
    static let panel = 64
    /// Right-hand sides solved together (one SIMD accumulator set).
    static let rhsBlock = 16

    /// Factors the symmetric positive-definite `a` (n×n row-major, lower triangle read) in place:
    /// on return its lower triangle holds L with A = L·Lᵀ and its upper triangle holds Lᵀ.
    ///
    /// Throws `.outOfRange` naming the first pivot that is not positive (the matrix is not positive
    /// definite, or is so to rounding only): more dampening on the diagonal is the usual fix.
    public static func factor(_ a: inout [Double], n: Int) throws {
        try checkSquare(a.count, n, "factor")
        guard n > 0 else { return }
        try a.withUnsafeMutableBufferPointer { try factor(at: $0.baseAddress!, n: n) }
    }

    /// `factor(_:n:)` on n×n row-major values at `a`.
    public static func factor(at a: UnsafeMutablePointer<Double>, n: Int) throws {
        precondition(n >= 0, "Cholesky.factor: negative size \(n)")
        guard n > 0 else { return }
        // The transposed panel below the diagonal block: pt[p·w + j] = L[e + j][kb + p].
        let pt = UnsafeMutablePointer<Double>.allocate(capacity: panel * n)
        defer { pt.deallocate() }
        var kb = 0
        while kb < n {
            let e = min(kb + panel, n), b = e - kb, w = n - e
            try factorDiagonalBlock(a, n: n, from: kb, to: e)
            if w > 0 {
                // L₂₁ = A₂₁·L₁₁⁻ᵀ, row by row.
                parallelChunks(count: w, work: w * b * b) { lo, hi in
                    for i in (e + lo)..<(e + hi) { solvePanelRow(a + i * n, a, n: n, from: kb, to: e) }
                }
                for i in e..<n {
                    let row = a + i * n + kb
                    for p in 0..<b { pt[p * w + (i - e)] = row[p] }
                }
                // A₂₂ −= L₂₁·L₂₁ᵀ on the lower triangle, 4 rows a task; tile t has about t+1 tiles
                // of columns, so tiles are dealt round-robin to balance the chunks.
                let tiles = (w + 3) / 4
                let chunks = min(tiles, Matmul.threads * 8)
                let update = { (chunk: Int) in
                    var t = chunk
                    while t < tiles {
                        let i0 = e + 4 * t, i1 = min(i0 + 4, n)
                        // Columns e..<i1: the tile's part of the lower triangle (the entries above its
                        // diagonal are written too; they lie in the upper triangle, rewritten at the end).
                        multiplyTile(c: a + i0 * n + e, ldc: n, a: a + i0 * n + kb, lda: n, b: pt, ldb: w,
                                     rows: i1 - i0, cols: i1 - e, k: b, alpha: -1)
                        t += chunks
                    }
                }
                if w * w * b < 2_000_000 {
                    for c in 0..<chunks { update(c) }
                } else {
                    DispatchQueue.concurrentPerform(iterations: chunks, execute: update)
                }
            }
            kb = e
        }
        mirrorLower(a, n: n)
    }

    /// Solves A·X = B in place, A = L·Lᵀ given by `factor` (n×n), B holding `rhs` right-hand sides,
    /// each a row of length n (rhs × n row-major); on return each row is the solution x = A⁻¹·b.
    public static func solve(factor l: [Double], n: Int, _ b: inout [Double], rhs: Int) throws {
        try checkSquare(l.count, n, "solve")
        guard rhs >= 0, b.count == rhs * n else {
            throw PruneError(.shapeMismatch, "Cholesky.solve: \(b.count) right-hand-side values are not \(rhs) rows of \(n); pass rhs × n row-major values")
        }
        guard n > 0, rhs > 0 else { return }
        l.withUnsafeBufferPointer { lp in
            b.withUnsafeMutableBufferPointer { bp in solve(factorAt: lp.baseAddress!, n: n, bp.baseAddress!, rhs: rhs) }
        }
    }

    /// `solve(factor:n:_:rhs:)` on pointers: `l` n×n from `factor`, `b` rhs × n, solved in place.
    public static func solve(factorAt l: UnsafePointer<Double>, n: Int, _ b: UnsafeMutablePointer<Double>, rhs: Int) {
        precondition(n >= 0 && rhs >= 0, "Cholesky.solve: negative size n=\(n) rhs=\(rhs)")
        guard n > 0, rhs > 0 else { return }
        let nb = rhsBlock, blocks = (rhs + nb - 1) / nb
        let body = { (blk: Int) in
            let r0 = blk * nb, r1 = min(r0 + nb, rhs)
            // z[i·nb + c] = b[(r0 + c)·n + i]; columns past r1 stay zero and solve to zero.
            let z = UnsafeMutablePointer<Double>.allocate(capacity: n * nb)
            defer { z.deallocate() }
            z.initialize(repeating: 0, count: n * nb)
            for c in 0..<(r1 - r0) {
                let row = b + (r0 + c) * n
                for i in 0..<n { z[i * nb + c] = row[i] }
            }
            substitute(l, n: n, z)
            for c in 0..<(r1 - r0) {
                let row = b + (r0 + c) * n
                for i in 0..<n { row[i] = z[i * nb + c] }
            }
        }
        if blocks == 1 || n * n * rhs < 1_000_000 {
            for blk in 0..<blocks { body(blk) }
        } else {
            DispatchQueue.concurrentPerform(iterations: blocks, execute: body)
        }
    }

    // MARK: - Factorisation steps

    /// Unblocked Cholesky of rows and columns kb..<e, whose trailing updates from the earlier panels
    /// have been applied; rows read columns kb..<j only.
    static func factorDiagonalBlock(_ a: UnsafeMutablePointer<Double>, n: Int, from kb: Int, to e: Int) throws {
        for i in kb..<e {
            let ri = a + i * n
            solvePanelRow(ri, a, n: n, from: kb, to: i)
            let d = ri[i], s = d - dot(ri + kb, ri + kb, i - kb)
            guard s > 0, s.isFinite else {
                let v = String(format: "%.6g", s), diag = String(format: "%.6g", d)
                throw PruneError(.outOfRange, "Cholesky: the \(n)×\(n) matrix is not positive definite: pivot \(i) is '\(v)' after elimination (its diagonal entry was \(diag)); add more dampening to the diagonal (a larger damp)")
            }
            ri[i] = s.squareRoot()
        }
    }

    /// Row `ri` (its columns kb..<j0 already final for the panel) solved against L's rows for columns
    /// kb..<e: ri[j] = (ri[j] − Σ_{kb≤p<j} ri[p]·L[j][p]) / L[j][j].
    @inline(__always)
    static func solvePanelRow(_ ri: UnsafeMutablePointer<Double>, _ a: UnsafeMutablePointer<Double>, n: Int, from kb: Int, to e: Int) {
        for j in kb..<e {
            let rj = a + j * n
            ri[j] = (ri[j] - dot(ri + kb, rj + kb, j - kb)) / rj[j]
        }
    }

    /// Copies the lower triangle onto the upper one, 32×32 tiles at a time.
    static func mirrorLower(_ a: UnsafeMutablePointer<Double>, n: Int) {
        let t = 32
        for ib in stride(from: 0, to: n, by: t) {
            for jb in stride(from: 0, through: ib, by: t) {
                for i in ib..<min(ib + t, n) {
                    for j in jb..<min(jb + t, i) { a[j * n + i] = a[i * n + j] }
                }
            }
        }
    }

    // MARK: - Substitution

    /// Solves L·Lᵀ·Z = Z in place for `rhsBlock` columns of z (n × rhsBlock row-major): forward with
    /// the rows of L (lower triangle), then backward with the rows of Lᵀ (upper triangle).
    static func substitute(_ l: UnsafePointer<Double>, n: Int, _ z: UnsafeMutablePointer<Double>) {
        typealias V = SIMD4<Double>
        let nb = rhsBlock
        @inline(__always) func load(_ p: UnsafeMutablePointer<Double>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<Double>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
        for i in 0..<n {
            let li = l + i * n, zi = z + i * nb
            var s0 = load(zi), s1 = load(zi + 4), s2 = load(zi + 8), s3 = load(zi + 12)
            var zj = z
            for j in 0..<i {
                let c = V(repeating: li[j])
                s0 -= c * load(zj); s1 -= c * load(zj + 4); s2 -= c * load(zj + 8); s3 -= c * load(zj + 12)
                zj += nb
            }
            let d = V(repeating: 1 / li[i])
            store(s0 * d, zi); store(s1 * d, zi + 4); store(s2 * d, zi + 8); store(s3 * d, zi + 12)
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            let ui = l + i * n, zi = z + i * nb
            var s0 = load(zi), s1 = load(zi + 4), s2 = load(zi + 8), s3 = load(zi + 12)
            var zj = zi + nb
            for j in (i + 1)..<n {
                let c = V(repeating: ui[j])
                s0 -= c * load(zj); s1 -= c * load(zj + 4); s2 -= c * load(zj + 8); s3 -= c * load(zj + 12)
                zj += nb
            }
            let d = V(repeating: 1 / ui[i])
            store(s0 * d, zi); store(s1 * d, zi + 4); store(s2 * d, zi + 8); store(s3 * d, zi + 12)
        }
    }

    // MARK: - Kernels

    /// Σ x[p]·y[p] over `count` values, in eight running sums.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ count: Int) -> Double {
        typealias V = SIMD4<Double>
        var s0 = V.zero, s1 = V.zero
        var p = 0
        while p + 8 <= count {
            s0 += UnsafeRawPointer(x + p).loadUnaligned(as: V.self) * UnsafeRawPointer(y + p).loadUnaligned(as: V.self)
            s1 += UnsafeRawPointer(x + p + 4).loadUnaligned(as: V.self) * UnsafeRawPointer(y + p + 4).loadUnaligned(as: V.self)
            p += 8
        }
        var s = (s0 + s1).sum()
        while p < count { s += x[p] * y[p]; p += 1 }
        return s
    }

    /// C += alpha·A·B with A m×k, B k×n, C m×n, all row-major with leading dimensions lda, ldb, ldc;
    /// 4-row tiles run concurrently when the product is large.
    static func multiplyAdd(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            c: UnsafeMutablePointer<Double>, ldc: Int, alpha: Double = 1) {
        guard m > 0, n > 0, k > 0 else { return }
        let tiles = (m + 3) / 4
        // Blocks of B (256 × 512, 1 MiB) stay in the L2 cache across the row tiles.
        let colBlock = 512, depthBlock = 256
        parallelChunks(count: tiles, work: m * n * k) { lo, hi in
            for pb in stride(from: 0, to: k, by: depthBlock) {
                let depth = min(depthBlock, k - pb)
                for jb in stride(from: 0, to: n, by: colBlock) {
                    let cols = min(colBlock, n - jb)
                    for t in lo..<hi {
                        let i0 = 4 * t, rows = min(4, m - i0)
                        multiplyTile(c: c + i0 * ldc + jb, ldc: ldc, a: a + i0 * lda + pb, lda: lda, b: b + pb * ldb + jb, ldb: ldb,
                                     rows: rows, cols: cols, k: depth, alpha: alpha)
                    }
                }
            }
        }
    }

    /// C[r][j] += alpha·Σ_p A[r][p]·B[p][j] for r < rows (at most 4) and j < cols: four rows share
    /// each load of B, four columns at a time in SIMD accumulators.
    @inline(__always)
    static func multiplyTile(c: UnsafeMutablePointer<Double>, ldc: Int, a: UnsafePointer<Double>, lda: Int,
                             b: UnsafePointer<Double>, ldb: Int, rows: Int, cols: Int, k: Int, alpha: Double) {
        typealias V = SIMD4<Double>
        @inline(__always) func load(_ p: UnsafePointer<Double>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func add(_ v: V, _ p: UnsafeMutablePointer<Double>) {
            UnsafeMutableRawPointer(p).storeBytes(of: load(p) + alpha * v, as: V.self)
        }
        var j = 0
        if rows == 4 {
            let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
            while j + 4 <= cols {
                var s0 = V.zero, s1 = V.zero, s2 = V.zero, s3 = V.zero
                var pb = b + j
                for p in 0..<k {
                    let v = load(pb)
                    s0 += a0[p] * v; s1 += a1[p] * v; s2 += a2[p] * v; s3 += a3[p] * v
                    pb += ldb
                }
                add(s0, c + j); add(s1, c + ldc + j); add(s2, c + 2 * ldc + j); add(s3, c + 3 * ldc + j)
                j += 4
            }
        } else {
            while j + 4 <= cols {
                for r in 0..<rows {
                    let ar = a + r * lda
                    var s = V.zero
                    var pb = b + j
                    for p in 0..<k { s += ar[p] * load(pb); pb += ldb }
                    add(s, c + r * ldc + j)
                }
                j += 4
            }
        }
        while j < cols {
            for r in 0..<rows {
                let ar = a + r * lda
                var s = 0.0
                for p in 0..<k { s += ar[p] * b[p * ldb + j] }
                c[r * ldc + j] += alpha * s
            }
            j += 1
        }
    }

    /// Runs body(lo, hi) over 0..<count in contiguous chunks, one per core when `work` (a flop count)
    /// is worth the threads, else once on the caller.
    static func parallelChunks(count: Int, work: Int, _ body: (Int, Int) -> Void) {
        let parts = work < 1_000_000 ? 1 : min(count, Matmul.threads)
        guard parts > 1 else { body(0, count); return }
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            body(count * p / parts, count * (p + 1) / parts)
        }
    }

    static func checkSquare(_ count: Int, _ n: Int, _ what: String) throws {
        guard n >= 0, count == n * n else {
            throw PruneError(.shapeMismatch, "Cholesky.\(what): a matrix of \(count) entries is not \(n)×\(n); pass n×n row-major values")
        }
    }
}
