import Foundation
import Testing
@testable import PruneFramework

/// Standard normal draws (Box–Muller) from a seeded generator.
struct GaussianDraws {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    mutating func next() -> Double {
        let u1 = (Double(rng.next() >> 11) + 0.5) / Double(1 << 53), u2 = Double(rng.next() >> 11) / Double(1 << 53)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
    mutating func vector(_ n: Int) -> [Double] { (0..<n).map { _ in next() } }
}

/// Q·diag(λ)·Qᵀ for an orthogonal Q made of two Householder reflections.
func matrix(spectrum lambdas: [Double], seed: UInt64) -> (a: [Double], q: [Double]) {
    let n = lambdas.count
    var g = GaussianDraws(seed: seed)
    func reflection(_ v: [Double]) -> [Double] {
        let nn = v.reduce(0) { $0 + $1 * $1 }
        return (0..<(n * n)).map { i in (i / n == i % n ? 1 : 0) - 2 * v[i / n] * v[i % n] / nn }
    }
    let h1 = reflection(g.vector(n)), h2 = reflection(g.vector(n))
    let q = (0..<(n * n)).map { i in (0..<n).reduce(0.0) { $0 + h1[(i / n) * n + $1] * h2[$1 * n + i % n] } }
    let a = (0..<(n * n)).map { i in (0..<n).reduce(0.0) { $0 + q[(i / n) * n + $1] * lambdas[$1] * q[(i % n) * n + $1] } }
    return (a, q)
}

@Suite struct SymmetricEigenTests {
    func expectClose(_ a: [Double], _ b: [Double], _ tol: Double = 1e-9, _ what: Comment = "") {
        #expect(a.count == b.count, what)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= tol * max(1, abs(y)), "\(x) vs \(y) \(what)") }
    }

    @Test func diagonalMatrixGivesItsDiagonal() throws {
        let d = [3.0, -1, 0, 7, 2.5]
        var a = [Double](repeating: 0, count: 25)
        for i in 0..<5 { a[i * 5 + i] = d[i] }
        expectClose(try SymmetricEigen.eigenvalues(a, n: 5), d.sorted())
        let j = try SymmetricEigen.jacobi(a, n: 5, vectors: true)
        expectClose(j.values, d.sorted())
    }

    @Test(arguments: [0.0, 0.3, Double.pi / 4, 1.2, 2.9])
    func twoByTwoRotations(theta: Double) throws {
        // R diag(5, −2) Rᵀ for a rotation by θ.
        let c = cos(theta), s = sin(theta)
        let a = [5 * c * c - 2 * s * s, 7 * c * s, 7 * c * s, 5 * s * s - 2 * c * c]
        expectClose(try SymmetricEigen.eigenvalues(a, n: 2), [-2, 5])
        let j = try SymmetricEigen.jacobi(a, n: 2, vectors: true)
        expectClose(j.values, [-2, 5])
        // The eigenvector of 5 is ±(cos θ, sin θ).
        #expect(abs(abs(j.vectors[1] * c + j.vectors[3] * s) - 1) < 1e-12)
    }

    @Test(arguments: [
        [1.0, 2, 3, 4, 5, 6, 7, 8],
        [2.0, 2, 2, 5, 5, -1],           // repeated eigenvalues
        [1e-6, 1, 1e3, -4, 0, 0, 0.5],   // widely spread, with a zero pair
        [4.0, 4, 4, 4],                  // a multiple of the identity
    ])
    func knownSpectrumFromOrthogonalBasis(lambdas: [Double]) throws {
        let (a, _) = matrix(spectrum: lambdas, seed: 11)
        let n = lambdas.count
        let scale = lambdas.map(abs).max()!
        expectClose(try SymmetricEigen.eigenvalues(a, n: n).map { $0 / scale }, lambdas.sorted().map { $0 / scale }, 1e-11)
        let j = try SymmetricEigen.jacobi(a, n: n, vectors: true)
        expectClose(j.values.map { $0 / scale }, lambdas.sorted().map { $0 / scale }, 1e-11)
        // A v = λ v and VᵀV = I.
        for col in 0..<n {
            for r in 0..<n {
                let av = (0..<n).reduce(0.0) { $0 + a[r * n + $1] * j.vectors[$1 * n + col] }
                #expect(abs(av - j.values[col] * j.vectors[r * n + col]) < 1e-10 * scale)
            }
            for other in 0..<n {
                let dot = (0..<n).reduce(0.0) { $0 + j.vectors[$1 * n + col] * j.vectors[$1 * n + other] }
                #expect(abs(dot - (col == other ? 1 : 0)) < 1e-10)
            }
        }
    }

    @Test func fastSolverMatchesJacobiOnRandomSymmetricMatrices() throws {
        var g = GaussianDraws(seed: 5)
        for n in [1, 3, 17, 40] {
            var a = g.vector(n * n)
            for i in 0..<n { for k in 0..<i { a[i * n + k] = a[k * n + i] } }
            expectClose(try SymmetricEigen.eigenvalues(a, n: n), try SymmetricEigen.jacobi(a, n: n).values, 1e-10, "n = \(n)")
        }
        // A Gaussian Gram matrix: positive semi-definite, most eigenvalues within rounding of 0.
        let x = g.vector(120)
        let k = RenyiEntropy.gaussianGram(x, n: 120, d: 1, sigma: 0.4)
        expectClose(try SymmetricEigen.eigenvalues(k, n: 120), try SymmetricEigen.jacobi(k, n: 120).values, 1e-9)
        #expect(try SymmetricEigen.eigenvalues([], n: 0).isEmpty)
    }

    @Test func badMatricesSayWhy() throws {
        let shape = try #require(throws: PruneError.self) { try SymmetricEigen.eigenvalues([1, 2, 3], n: 2) }
        #expect(shape.message.contains("3 entries is not 2×2"), "\(shape.message)")
        let nan = try #require(throws: PruneError.self) { try SymmetricEigen.jacobi([1, .nan, .nan, 1], n: 2) }
        #expect(nan.code == .invalidArgument && nan.message.contains("NaN or infinite entry"), "\(nan.message)")
        do {
            _ = try SymmetricEigen.eigenvalues([1, 2, 3], n: 2)
        } catch let e as PruneError {
            #expect(e.code == .shapeMismatch && e.message.contains("not 2×2"))
        } catch { Issue.record("unexpected \(error)") }
    }
}

@Suite struct RenyiEntropyTests {
    /// A discrete variable: value v repeated counts[v] times.
    func discrete(_ counts: [Int]) -> [Double] { counts.enumerated().flatMap { v, c in [Double](repeating: Double(v), count: c) } }

    @Test(arguments: [0.5, 1.0, 1.5, 2.0, 3.0])
    func discreteVariableWithNarrowKernelHasItsRenyiEntropy(alpha: Double) throws {
        // K is 1 within a value's block and ~0 across (σ = 0.05, values 1 apart): λ(A) = p, S_α = H_α(p).
        let counts = [16, 8, 4, 4], n = 32
        let x = discrete(counts)
        let k = RenyiEntropy.gaussianGram(x, n: n, d: 1, sigma: 0.05)
        let p = counts.map { Double($0) / Double(n) }
        let want = RenyiEntropy.entropy(ofSpectrum: p, alpha: alpha)
        #expect(abs(try RenyiEntropy.entropy(k, n: n, alpha: alpha) - want) < 1e-9)
        // MI of a variable with itself equals its entropy (K∘K = K here).
        #expect(abs(try RenyiEntropy.mutualInformation(k, k, n: n, alpha: alpha) - want) < 1e-9)
        // Known values: H₂ = −log₂ Σp², H₁ = 1.75 bits.
        if alpha == 2 { #expect(abs(want + log2(p.reduce(0) { $0 + $1 * $1 })) < 1e-12) }
        if alpha == 1 { #expect(abs(want - 1.75) < 1e-12) }
    }

    @Test func entropyIsBetweenZeroAndLogN() throws {
        let n = 20
        let constant = RenyiEntropy.gaussianGram([Double](repeating: 3, count: n), n: n, d: 1, sigma: 1)
        let distinct = RenyiEntropy.gaussianGram((0..<n).map(Double.init), n: n, d: 1, sigma: 0.01)
        for alpha in [0.5, 1, 2, 4] {
            #expect(abs(try RenyiEntropy.entropy(constant, n: n, alpha: alpha)) < 1e-9)
            #expect(abs(try RenyiEntropy.entropy(distinct, n: n, alpha: alpha) - log2(Double(n))) < 1e-9)
        }
    }

    @Test func secondOrderFastPathEqualsTheSpectrum() throws {
        var g = GaussianDraws(seed: 3)
        let n = 50, x = g.vector(n)
        let k = RenyiEntropy.gaussianGram(x, n: n, d: 1, sigma: RenyiEntropy.silvermanBandwidth(x, n: n, d: 1))
        let lambdas = try SymmetricEigen.eigenvalues(k, n: n).map { max(0, $0 / Double(n)) }
        #expect(abs(try RenyiEntropy.entropy(k, n: n, alpha: 2) - RenyiEntropy.entropy(ofSpectrum: lambdas, alpha: 2)) < 1e-9)
        // Rényi entropy does not increase with α.
        let s = try [0.5, 1, 2, 3].map { try RenyiEntropy.entropy(k, n: n, alpha: $0) }
        #expect(s[0] >= s[1] && s[1] >= s[2] && s[2] >= s[3])
    }

    @Test(arguments: [1.5, 2.0])
    func independentGaussiansShareAlmostNothing(alpha: Double) throws {
        var g = GaussianDraws(seed: 21)
        let n = 300, x = g.vector(n), y = g.vector(n)
        let sx = RenyiEntropy.silvermanBandwidth(x, n: n, d: 1), sy = RenyiEntropy.silvermanBandwidth(y, n: n, d: 1)
        let kx = RenyiEntropy.gaussianGram(x, n: n, d: 1, sigma: sx), ky = RenyiEntropy.gaussianGram(y, n: n, d: 1, sigma: sy)
        let hx = try RenyiEntropy.entropy(kx, n: n, alpha: alpha)
        let independent = try RenyiEntropy.mutualInformation(kx, ky, n: n, alpha: alpha)
        // y' = x + small noise is almost the same variable.
        let close = zip(x, g.vector(n)).map { $0 + 0.05 * $1 }
        let kc = RenyiEntropy.gaussianGram(close, n: n, d: 1, sigma: RenyiEntropy.silvermanBandwidth(close, n: n, d: 1))
        let dependent = try RenyiEntropy.mutualInformation(kx, kc, n: n, alpha: alpha)
        // The estimator's finite-n bias is a few percent of S (it shrinks as n grows).
        #expect(abs(independent) < 0.06 * hx, "I = \(independent) bits, S = \(hx)")
        #expect(dependent > 0.5 * hx, "I = \(dependent) bits, S = \(hx)")
    }

    @Test func silvermanBandwidthInOneAndMoreDimensions() {
        let x = [1.0, 3, 5, 7]  // population sd √5
        #expect(abs(RenyiEntropy.silvermanBandwidth(x, n: 4, d: 1) - 1.06 * 5.0.squareRoot() * pow(4, -0.2)) < 1e-12)
        // Two identical coordinates: the per-coordinate sd is the same, the distance doubles in square.
        let x2 = x.flatMap { [$0, $0] }
        #expect(abs(RenyiEntropy.silvermanBandwidth(x2, n: 4, d: 2) - 2.0.squareRoot() * RenyiEntropy.silvermanBandwidth(x, n: 4, d: 1)) < 1e-12)
        #expect(RenyiEntropy.silvermanBandwidth([2, 2, 2], n: 3, d: 1) == 0)
    }

    @Test func packedGramsMatchFullMatrices() throws {
        var g = GaussianDraws(seed: 8)
        let n = 40, cols = 5
        var z = (0..<(n * cols)).map { _ in Float(g.next()) }
        for i in 0..<n { z[i * cols + 4] = z[i * cols + 1] * 2 + 0.1 * Float(g.next()) }
        let columns = [0..<1, 1..<2, 2..<4, 4..<5]
        let sigmas = [0.7, 0.9, 1.3, 0.0]
        let grams = z.withUnsafeBufferPointer { PackedGaussianGrams(x: $0, n: n, cols: cols, columns: columns, sigmas: sigmas) }
        let full = columns.enumerated().map { u, r in
            RenyiEntropy.gaussianGram((0..<n).flatMap { i in r.map { Double(z[i * cols + $0]) } }, n: n, d: r.count, sigma: sigmas[u])
        }
        for alpha in [2.0, 1.5] {
            let h = try (0..<4).map { try grams.entropy($0, alpha: alpha) }
            for u in 0..<4 { #expect(abs(h[u] - (try RenyiEntropy.entropy(full[u], n: n, alpha: alpha))) < 1e-5) }
            for (a, b) in [(0, 1), (1, 3), (2, 3), (0, 2)] {
                let want = try RenyiEntropy.mutualInformation(full[a], full[b], n: n, alpha: alpha)
                #expect(abs(try grams.mutualInformation(a, b, alpha: alpha, entropies: h) - want) < 1e-5)
            }
        }
    }

    @Test(arguments: [([1.0], 1, 0.0, "alpha = '0.0'"), ([1], 1, .infinity, "alpha = 'inf'"),
                      ([1, 0, 0], 2, 2, "3 entries is not 2×2"), ([0, 0, 0, 0], 2, 2, "trace '0.0'")])
    func badOrdersAndShapesSayWhy(gram: [Double], n: Int, alpha: Double, fragment: String) throws {
        let e = try #require(throws: PruneError.self) { try RenyiEntropy.entropy(gram, n: n, alpha: alpha) }
        #expect(e.message.contains(fragment), "\(e.message)")
    }
}

@Suite struct ActivationSampleTests {
    func observe(_ stats: ActivationStatistics, layer: Int, rows: Int, cols: Int, offset: Float) {
        let values = (0..<(rows * cols)).map { Float($0) + offset }
        values.withUnsafeBufferPointer { stats.observe(layer: layer, site: .mlpIntermediate, activations: $0, rows: rows, cols: cols) }
    }

    @Test func reservoirKeepsABoundedUniformSampleOfRows() throws {
        let stats = ActivationStatistics(sampleRows: 4, seed: 9)
        observe(stats, layer: 0, rows: 3, cols: 2, offset: 0)
        #expect(stats.sample(layer: 0, site: .mlpIntermediate)?.values == [0, 1, 2, 3, 4, 5])
        observe(stats, layer: 0, rows: 50, cols: 2, offset: 6)
        let s = try #require(stats.sample(layer: 0, site: .mlpIntermediate))
        #expect(s.rows == 4 && s.cols == 2 && s.seen == 53)
        // Every kept row is a whole row of the input (even first value, odd second, consecutive).
        for r in 0..<4 { #expect(Int(s.values[2 * r]) % 2 == 0 && s.values[2 * r + 1] == s.values[2 * r] + 1) }
        // Statistics are still streamed, and unsampled sites keep nothing.
        #expect(stats.columns["0.mlp-intermediate"]?.count == 53)
        #expect(stats.sample(layer: 0, site: .mlpInput) == nil)
        #expect(ActivationStatistics().sample(layer: 0, site: .mlpIntermediate) == nil)
    }

    @Test func everyLayerKeepsTheSameTokenPositions() throws {
        let stats = ActivationStatistics(sampleRows: 5, seed: 3)
        for layer in 0..<2 { observe(stats, layer: layer, rows: 40, cols: 1, offset: Float(100 * layer)) }
        let a = try #require(stats.sample(layer: 0, site: .mlpIntermediate)), b = try #require(stats.sample(layer: 1, site: .mlpIntermediate))
        #expect(a.values.map { $0 + 100 } == b.values)
        #expect(a.values != [0, 1, 2, 3, 4])  // some later rows replaced early ones
    }

    @Test func calibrationSamplesMLPAndHeadOutputsOfEveryLayer() throws {
        let model = try Transformer(randomWith: tinyConfig(), seed: 4)
        let stats = try Calibration.statistics(model: model, sequences: [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], sampleRows: 8, seed: 1)
        for l in 0..<model.config.nLayers {
            let mlp = try #require(stats.sample(layer: l, site: .mlpIntermediate))
            let heads = try #require(stats.sample(layer: l, site: .attnOutputInput))
            #expect(mlp.rows == 8 && mlp.cols == model.config.ffnDim[l] && mlp.seen == 12)
            #expect(heads.rows == 8 && heads.cols == model.config.nHead[l] * model.config.headDim)
        }
        #expect(try Calibration.statistics(model: model, sequences: [[1, 2, 3]]).samples.isEmpty)
    }
}
