import Testing
@testable import PruneFramework

/// Fast matmul kernels against the naive reference, on every backend this CPU runs.
@Suite struct MatmulTests {
    /// Awkward sizes around the micro-tiles (8×48, 6×16, 4×16), the few-row paths (m ≤ 4), the cache
    /// blocks (KC 256/384, MC 120/128, NC 2048/3072) and the threading thresholds.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 7, 63), (1, 577, 65), (2, 64, 577), (3, 65, 7), (4, 63, 64), (5, 48, 49),
        (7, 2, 577), (8, 96, 17), (9, 49, 1), (63, 65, 64), (64, 577, 7), (65, 63, 577), (130, 97, 65),
        (577, 64, 63), (17, 577, 130), (1, 1000, 300), (2, 1200, 200), (200, 300, 100), (6, 3100, 9),
        (12, 50, 300), (9, 50, 0), (0, 5, 5), (5, 0, 5),
    ]

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in rng.nextUnit() * 2 - 1 }
    }

    /// Fails when some |got − want| > 1e-4·max(1, |want|).
    static func expectClose(_ got: [Float], _ want: [Float], _ what: String) {
        var worst: Float = 0, at = 0
        for i in got.indices {
            let e = abs(got[i] - want[i]) / max(1, abs(want[i]))
            if !(e <= worst) { worst = e; at = i }
        }
        #expect(worst <= 1e-4, "\(what): element \(at) is \(got.isEmpty ? 0 : got[at]), want \(want.isEmpty ? 0 : want[at])")
    }

    @Test func backendIsNamed() {
        print("Matmul backend: \(Matmul.backend) (available: \(Matmul.availableBackends.map(Matmul.backendName)), threads: \(Matmul.threads))")
        #expect(["avx512", "avx2", "portable"].contains(Matmul.backend))
        #expect(Matmul.backendName(Matmul.bestBackend) == Matmul.backend)
    }

    @Test(arguments: shapes)
    func fastMatchesNaive(_ shape: (m: Int, n: Int, k: Int)) {
        let (m, n, k) = shape
        let seed = UInt64(m * 1_000_003 + n * 1009 + k)
        let x = Self.random(m * k, seed: seed), w = Self.random(n * k, seed: seed + 1)
        let dy = Self.random(m * n, seed: seed + 2)
        for backend in Matmul.availableBackends {
            let name = "\(Matmul.backendName(backend)) m=\(m) n=\(n) k=\(k)"
            let packed = PackedMatrix(w, n: n, k: k, backend: backend)
            for accumulate in [false, true] {
                let tag = "\(name) accumulate=\(accumulate)"
                // xwt, unpacked and packed: Y[m×n]
                let y0 = Self.random(m * n, seed: seed + 3)
                var want = y0, got = y0, gotPacked = y0
                Matmul.naiveXWT(&want, x, w, m: m, n: n, k: k, accumulate: accumulate)
                Matmul.xwt(&got, x, w, m: m, n: n, k: k, accumulate: accumulate, backend: backend)
                Matmul.xwt(&gotPacked, x, packed, m: m, accumulate: accumulate)
                Self.expectClose(got, want, "xwt \(tag)")
                Self.expectClose(gotPacked, want, "xwt packed \(tag)")
                // dyw: dX[m×k]
                let dx0 = Self.random(m * k, seed: seed + 4)
                var wantDX = dx0, gotDX = dx0
                Matmul.naiveDYW(&wantDX, dy, w, m: m, n: n, k: k, accumulate: accumulate)
                Matmul.dyw(&gotDX, dy, w, m: m, n: n, k: k, accumulate: accumulate, backend: backend)
                Self.expectClose(gotDX, wantDX, "dyw \(tag)")
                // dytx: dW[n×k]
                let dw0 = Self.random(n * k, seed: seed + 5)
                var wantDW = dw0, gotDW = dw0
                Matmul.naiveDYTX(&wantDW, dy, x, m: m, n: n, k: k, accumulate: accumulate)
                Matmul.dytx(&gotDW, dy, x, m: m, n: n, k: k, accumulate: accumulate, backend: backend)
                Self.expectClose(gotDW, wantDW, "dytx \(tag)")
            }
        }
    }

    /// The public entry points (best backend) agree with the naive reference too.
    @Test func publicEntryPoints() {
        let (m, n, k) = (37, 101, 75)
        let x = Self.random(m * k, seed: 11), w = Self.random(n * k, seed: 12), dy = Self.random(m * n, seed: 13)
        var want = [Float](repeating: 0, count: m * n), got = want, gotPacked = want
        Matmul.naiveXWT(&want, x, w, m: m, n: n, k: k)
        Matmul.xwt(&got, x, w, m: m, n: n, k: k)
        Matmul.xwt(&gotPacked, x, PackedMatrix(w, n: n, k: k), m: m)
        Self.expectClose(got, want, "xwt")
        Self.expectClose(gotPacked, want, "xwt packed")
        var wantDX = [Float](repeating: 0, count: m * k), gotDX = wantDX
        Matmul.naiveDYW(&wantDX, dy, w, m: m, n: n, k: k)
        Matmul.dyw(&gotDX, dy, w, m: m, n: n, k: k)
        Self.expectClose(gotDX, wantDX, "dyw")
        var wantDW = [Float](repeating: 0, count: n * k), gotDW = wantDW
        Matmul.naiveDYTX(&wantDW, dy, x, m: m, n: n, k: k)
        Matmul.dytx(&gotDW, dy, x, m: m, n: n, k: k)
        Self.expectClose(gotDW, wantDW, "dytx")
    }

    /// A PackedMatrix holds its own copy: changing W afterwards does not change the product.
    @Test func packedMatrixCopiesTheWeight() {
        let (m, n, k) = (5, 50, 20)
        let x = Self.random(m * k, seed: 21)
        var w = Self.random(n * k, seed: 22)
        let packed = PackedMatrix(w, n: n, k: k)
        var want = [Float](repeating: 0, count: m * n), got = want
        Matmul.naiveXWT(&want, x, w, m: m, n: n, k: k)
        for i in w.indices { w[i] = 0 }
        Matmul.xwt(&got, x, packed, m: m)
        Self.expectClose(got, want, "xwt packed after W changed")
        #expect(packed.n == n && packed.k == k)
    }

    /// Finite differences of L = Σ G ⊙ (X·Wᵀ) against dyw (∂L/∂X = G·W) and dytx (∂L/∂W = Gᵀ·X).
    @Test func gradientsMatchFiniteDifferences() {
        let (m, n, k) = (6, 9, 70)
        var x = Self.random(m * k, seed: 31), w = Self.random(n * k, seed: 32)
        let g = Self.random(m * n, seed: 33)
        func loss(_ x: [Float], _ w: [Float]) -> Double {
            var y = [Float](repeating: 0, count: m * n)
            Matmul.xwt(&y, x, w, m: m, n: n, k: k)
            return zip(y, g).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var dx = [Float](repeating: 0, count: m * k), dw = [Float](repeating: 0, count: n * k)
        Matmul.dyw(&dx, g, w, m: m, n: n, k: k)
        Matmul.dytx(&dw, g, x, m: m, n: n, k: k)
        let h: Float = 1e-2
        for i in stride(from: 0, to: m * k, by: 37) {
            let v = x[i]
            x[i] = v + h; let up = loss(x, w)
            x[i] = v - h; let down = loss(x, w)
            x[i] = v
            let fd = (up - down) / Double(2 * h)
            #expect(abs(fd - Double(dx[i])) <= 2e-3 * max(1, abs(fd)), "dX[\(i)]: finite difference \(fd), dyw \(dx[i])")
        }
        for i in stride(from: 0, to: n * k, by: 41) {
            let v = w[i]
            w[i] = v + h; let up = loss(x, w)
            w[i] = v - h; let down = loss(x, w)
            w[i] = v
            let fd = (up - down) / Double(2 * h)
            #expect(abs(fd - Double(dw[i])) <= 2e-3 * max(1, abs(fd)), "dW[\(i)]: finite difference \(fd), dytx \(dw[i])")
        }
    }

    @Test func benchmarkReportsEveryCase() {
        let r = MatmulBenchmark.run(ms: [1, 9], shapes: [(n: 40, k: 24)], ops: ["xwt", "xwt-packed", "dyw", "dytx", "nope"],
                                    minSeconds: 0)
        #expect(r.count == 8)
        #expect(r.allSatisfy { $0.gflops > 0 && $0.seconds > 0 && $0.n == 40 && $0.k == 24 })
    }
}
