import Foundation

/// One measured product of `MatmulBenchmark`.
public struct MatmulBenchResult: Codable, Sendable {
    public var m: Int
    public var n: Int
    public var k: Int
    /// "xwt", "xwt-packed", "dyw" or "dytx".
    public var op: String
    /// 2·m·n·k / seconds / 1e9.
    public var gflops: Double
    /// The best time of one call.
    public var seconds: Double

    public init(m: Int, n: Int, k: Int, op: String, gflops: Double, seconds: Double) {
        self.m = m; self.n = n; self.k = k; self.op = op; self.gflops = gflops; self.seconds = seconds
    }
}

/// Throughput of `Matmul` on the shapes of the linear layers (bench/matmul_numpy.py measures numpy the same way).
///
/// Forms, FLOPs 2·m·n·k each: "xwt" Y[m×n] = X[m×k]·Wᵀ (W n×k, unpacked: packing is part of the call);
/// "xwt-packed" the same with W packed beforehand; "dyw" dX[m×k] = dY[m×n]·W; "dytx" dW[n×k] = dYᵀ·X.
public enum MatmulBenchmark {
    public static let defaultShapes: [(n: Int, k: Int)] = [(576, 576), (192, 576), (1536, 576), (576, 1536),
                                                           (49152, 576)]

    /// Runs every (shape, m, op) back to back for at least `minSeconds` (and 3 calls); reports the best call.
    public static func run(ms: [Int] = [1, 128, 512, 2048], shapes: [(n: Int, k: Int)] = defaultShapes,
                           ops: [String] = ["xwt", "dyw", "dytx"], minSeconds: Double = 0.3) -> [MatmulBenchResult] {
        var results: [MatmulBenchResult] = []
        for (n, k) in shapes {
            for m in ms {
                for op in ops {
                    guard let s = measure(op: op, m: m, n: n, k: k, minSeconds: minSeconds) else { continue }
                    results.append(MatmulBenchResult(m: m, n: n, k: k, op: op,
                                                     gflops: 2 * Double(m) * Double(n) * Double(k) / s / 1e9,
                                                     seconds: s))
                }
            }
        }
        return results
    }

    /// Best seconds per call of one case, or nil for an unknown op.
    static func measure(op: String, m: Int, n: Int, k: Int, minSeconds: Double) -> Double? {
        var rng = SplitMix64(seed: 1)
        func random(_ count: Int) -> [Float] {
            (0..<count).map { _ in Float(Double(rng.next() >> 11) / Double(1 << 53)) * 2 - 1 }
        }
        let w = random(n * k)  // xwt, dyw: W (n×k)
        let a = random(m * max(n, k))  // X (m×k) or dY (m×n)
        let b = random(m * k)  // dytx: X
        var out = [Float](repeating: 0, count: max(m * n, m * k, n * k))
        let call: (UnsafeMutablePointer<Float>) -> Void
        switch op {
        case "xwt":
            call = { o in Matmul.xwt(o, a, w, m: m, n: n, k: k) }
        case "xwt-packed":
            let packed = PackedMatrix(w, n: n, k: k)
            call = { o in Matmul.xwt(o, a, packed, m: m) }
        case "dyw":
            call = { o in Matmul.dyw(o, a, w, m: m, n: n, k: k) }
        case "dytx":
            call = { o in Matmul.dytx(o, a, b, m: m, n: n, k: k) }
        default:
            return nil
        }
        return out.withUnsafeMutableBufferPointer { o in
            call(o.baseAddress!)  // warm-up
            var best = Double.infinity, calls = 0
            let start = DispatchTime.now().uptimeNanoseconds
            while calls < 3 || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < minSeconds {
                let t0 = DispatchTime.now().uptimeNanoseconds
                call(o.baseAddress!)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                calls += 1
            }
            return best
        }
    }
}
