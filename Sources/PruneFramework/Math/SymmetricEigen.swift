import Foundation

/// Eigenvalues (and optionally eigenvectors) of real symmetric matrices, with no external library.
///
/// Two solvers: `jacobi` (cyclic Jacobi rotations; slow, O(n³) per sweep, but simple and exact to
/// rounding; gives eigenvectors) is the reference, and `eigenvalues` (Householder reduction to
/// tridiagonal form, then implicit QL with Wilkinson shifts; about (4/3)n³ + O(n²)) is the fast path
/// that the matrix-based Rényi entropy uses. A test compares them.
public enum SymmetricEigen {
    /// Eigenvalues ascending and, when asked, the matching unit eigenvectors, by cyclic Jacobi rotations.
    ///
    /// - a: n×n row-major, symmetric (only its upper triangle is read).
    /// - returns: `values` (n, ascending) and `vectors` (n×n row-major, column i is the eigenvector
    ///   of `values[i]`; empty unless `vectors` is true).
    public static func jacobi(_ a: [Double], n: Int, vectors wantVectors: Bool = false,
                              maxSweeps: Int = 100) throws -> (values: [Double], vectors: [Double]) {
        try checkSquare(a, n, "jacobi")
        var m = a
        for i in 0..<n { for j in 0..<i { m[i * n + j] = m[j * n + i] } }
        var v = [Double](repeating: 0, count: wantVectors ? n * n : 0)
        if wantVectors { for i in 0..<n { v[i * n + i] = 1 } }
        let scale = max(m.reduce(0) { $0 + $1 * $1 }, .leastNormalMagnitude)
        var converged = n < 2
        for _ in 0..<maxSweeps where !converged {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += m[p * n + q] * m[p * n + q] } }
            if off <= 1e-30 * scale { converged = true; break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n where m[p * n + q] != 0 {
                    rotate(&m, &v, n: n, p: p, q: q, vectors: wantVectors)
                }
            }
        }
        guard converged else {
            throw PruneError(.outOfRange, "SymmetricEigen.jacobi: no convergence in \(maxSweeps) sweeps for a \(n)×\(n) matrix; check it for NaN or infinite entries")
        }
        let order = (0..<n).sorted { m[$0 * n + $0] < m[$1 * n + $1] }
        let values = order.map { m[$0 * n + $0] }
        guard wantVectors else { return (values, []) }
        var sorted = [Double](repeating: 0, count: n * n)
        for (col, src) in order.enumerated() { for r in 0..<n { sorted[r * n + col] = v[r * n + src] } }
        return (values, sorted)
    }

    /// One Jacobi rotation in the (p, q) plane that zeroes m[p][q]; updates the eigenvector columns.
    static func rotate(_ m: inout [Double], _ v: inout [Double], n: Int, p: Int, q: Int, vectors: Bool) {
        let apq = m[p * n + q], app = m[p * n + p], aqq = m[q * n + q]
        let theta = (aqq - app) / (2 * apq)
        let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
        let c = 1 / (t * t + 1).squareRoot(), s = t * c
        m.withUnsafeMutableBufferPointer { a in
            for k in 0..<n where k != p && k != q {
                let akp = a[k * n + p], akq = a[k * n + q]
                let np = c * akp - s * akq, nq = s * akp + c * akq
                a[k * n + p] = np; a[p * n + k] = np
                a[k * n + q] = nq; a[q * n + k] = nq
            }
            a[p * n + p] = app - t * apq
            a[q * n + q] = aqq + t * apq
            a[p * n + q] = 0; a[q * n + p] = 0
        }
        guard vectors else { return }
        v.withUnsafeMutableBufferPointer { w in
            for k in 0..<n {
                let vkp = w[k * n + p], vkq = w[k * n + q]
                w[k * n + p] = c * vkp - s * vkq
                w[k * n + q] = s * vkp + c * vkq
            }
        }
    }

    /// Eigenvalues ascending: Householder tridiagonalisation, then implicit QL with Wilkinson shifts.
    ///
    /// - a: n×n row-major, symmetric (only its lower triangle is read).
    public static func eigenvalues(_ a: [Double], n: Int) throws -> [Double] {
        try checkSquare(a, n, "eigenvalues")
        var (d, e) = tridiagonalize(a, n: n)
        try tridiagonalQL(&d, &e)
        return d.sorted()
    }

    /// Householder reduction Qᵀ A Q = T; returns T's diagonal d (n) and sub-diagonal e (n, e[n−1] = 0).
    static func tridiagonalize(_ a: [Double], n: Int) -> (d: [Double], e: [Double]) {
        var m = a
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { m[i * n + j] = m[j * n + i] } }
        var d = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: n)
        var v = [Double](repeating: 0, count: n), w = [Double](repeating: 0, count: n)
        m.withUnsafeMutableBufferPointer { m in
            for k in 0..<max(0, n - 2) {
                // Reflect x = column k below the diagonal onto ±‖x‖·e₁.
                var norm2 = 0.0
                for i in (k + 1)..<n { norm2 += m[i * n + k] * m[i * n + k] }
                let x0 = m[(k + 1) * n + k]
                let alpha = (x0 >= 0 ? -1.0 : 1.0) * norm2.squareRoot()
                d[k] = m[k * n + k]
                e[k] = alpha
                let vnorm2 = norm2 - x0 * x0 + (x0 - alpha) * (x0 - alpha)
                guard vnorm2 > 0 else { e[k] = x0; continue }  // already tridiagonal in this column
                let inv = 1 / vnorm2.squareRoot()
                for i in (k + 1)..<n { v[i] = m[i * n + k] * inv }
                v[k + 1] = (x0 - alpha) * inv
                // B ← H B H with H = I − 2vvᵀ on the trailing block: p = 2Bv, w = p − (vᵀp)v, B −= vwᵀ + wvᵀ.
                var vp = 0.0
                for i in (k + 1)..<n {
                    var s = 0.0
                    for j in (k + 1)..<n { s += m[i * n + j] * v[j] }
                    w[i] = 2 * s
                    vp += v[i] * w[i]
                }
                for i in (k + 1)..<n { w[i] -= vp * v[i] }
                for i in (k + 1)..<n {
                    for j in (k + 1)..<n { m[i * n + j] -= v[i] * w[j] + w[i] * v[j] }
                }
            }
            if n >= 2 {
                d[n - 2] = m[(n - 2) * n + n - 2]
                e[n - 2] = m[(n - 1) * n + n - 2]
            }
            if n >= 1 { d[n - 1] = m[(n - 1) * n + n - 1] }
        }
        return (d, e)
    }

    /// Diagonalises a symmetric tridiagonal matrix in place: on return d holds its eigenvalues.
    ///
    /// - d: diagonal (n); e: sub-diagonal (n, e[i] couples d[i] and d[i+1]; e[n−1] ignored).
    static func tridiagonalQL(_ d: inout [Double], _ e: inout [Double], maxIterations: Int = 60) throws {
        let n = d.count
        guard n > 1 else { return }
        e[n - 1] = 0
        // An off-diagonal below ε·‖T‖ is at the level of the rounding already made; dropping it moves
        // no eigenvalue by more than that (a purely relative test can stall on clusters near 0).
        let floor = Double.ulpOfOne * (0..<n).reduce(0.0) { max($0, abs(d[$1]) + abs(e[$1])) }
        for l in 0..<n {
            var iterations = 0
            while true {
                // The first negligible off-diagonal at or after l splits off a block [l, m].
                var m = l
                while m < n - 1 {
                    let dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) <= Double.ulpOfOne * dd || abs(e[m]) <= floor { break }
                    m += 1
                }
                if m == l { break }
                iterations += 1
                guard iterations <= maxIterations else {
                    throw PruneError(.outOfRange, "SymmetricEigen: QL found no eigenvalue \(l) in \(maxIterations) iterations; check the matrix for NaN or infinite entries")
                }
                qlStep(&d, &e, l: l, m: m)
            }
        }
    }

    /// One implicit QL sweep over the block [l, m] with a Wilkinson shift from its top 2×2.
    static func qlStep(_ d: inout [Double], _ e: inout [Double], l: Int, m: Int) {
        var g = (d[l + 1] - d[l]) / (2 * e[l])
        var r = (g * g + 1).squareRoot()
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
        var s = 1.0, c = 1.0, p = 0.0
        var i = m - 1
        while i >= l {
            let f = s * e[i], b = c * e[i]
            r = (f * f + g * g).squareRoot()
            e[i + 1] = r
            if r == 0 {
                // Underflow: the block splits here; undo the shift and start again.
                d[i + 1] -= p
                e[m] = 0
                return
            }
            s = f / r
            c = g / r
            g = d[i + 1] - p
            r = (d[i] - g) * s + 2 * c * b
            p = s * r
            d[i + 1] = g + p
            g = c * r - b
            i -= 1
        }
        d[l] -= p
        e[l] = g
        e[m] = 0
    }

    static func checkSquare(_ a: [Double], _ n: Int, _ what: String) throws {
        guard n >= 0, a.count == n * n else {
            throw PruneError(.shapeMismatch, "SymmetricEigen.\(what): a matrix of \(a.count) entries is not \(n)×\(n); pass n×n row-major values")
        }
        guard a.allSatisfy(\.isFinite) else {
            throw PruneError(.invalidArgument, "SymmetricEigen.\(what): the \(n)×\(n) matrix has a NaN or infinite entry; eigenvalues need finite values")
        }
    }
}
