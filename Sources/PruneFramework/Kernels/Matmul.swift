import CKernels
import Dispatch
import Foundation

/// Matrix products of the linear layers, forward and backward, on CPU.
///
/// All matrices are row-major `Float`. The work is done by C micro-kernels in `CKernels` (matmul*.c):
/// packed, register-blocked GEMM (8×48 with AVX-512, 6×16 with AVX2+FMA, 4×16 portable C), picked at
/// run time from what the CPU reports, with dedicated paths for m ≤ 4 rows (token generation is
/// memory-bound: W is streamed once). Large products are split over
/// `ProcessInfo.processInfo.activeProcessorCount` threads.
public enum Matmul {
    /// Y[m×n] = X[m×k] · Wᵀ, W is n×k row-major (a linear layer's forward). accumulate: Y += instead of =.
    ///
    /// - y: m×n
    /// - x: m×k
    /// - w: n×k
    @inlinable
    public static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                           m: Int, n: Int, k: Int, accumulate: Bool = false) {
        xwt(y, x, w, m: m, n: n, k: k, accumulate: accumulate, backend: bestBackend)
    }

    /// Same with a pre-packed W (pack once per weight version, reuse across calls).
    ///
    /// - y: m×w.n
    /// - x: m×w.k
    @inlinable
    public static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedMatrix, m: Int,
                           accumulate: Bool = false) {
        xwtPacked(y, x, w, m: m, accumulate: accumulate)
    }

    /// dX[m×k] = dY[m×n] · W[n×k] (backward to the input).
    ///
    /// - dx: m×k
    /// - dy: m×n
    /// - w: n×k
    @inlinable
    public static func dyw(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                           m: Int, n: Int, k: Int, accumulate: Bool = false) {
        dyw(dx, dy, w, m: m, n: n, k: k, accumulate: accumulate, backend: bestBackend)
    }

    /// dW[n×k] = dYᵀ · X with dY m×n, X m×k (backward to the weight).
    ///
    /// - dw: n×k
    /// - dy: m×n
    /// - x: m×k
    @inlinable
    public static func dytx(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                            m: Int, n: Int, k: Int, accumulate: Bool = false) {
        dytx(dw, dy, x, m: m, n: n, k: k, accumulate: accumulate, backend: bestBackend)
    }

    /// The backend in use: "avx512", "avx2" or "portable".
    public static var backend: String { backendName(bestBackend) }

    // MARK: - Backend and threads

    /// The fastest backend this CPU runs (a PRUNE_MM_* value).
    @usableFromInline
    static let bestBackend: Int32 = prune_mm_best_backend()

    /// Backends this CPU runs, slowest first (the tests compare each with the naive reference).
    static var availableBackends: [Int32] { Array(0...bestBackend) }

    static func backendName(_ id: Int32) -> String { String(cString: prune_mm_backend_name(id)) }

    static let usePool = ProcessInfo.processInfo.environment["MMPOOL"] == "1"
    static let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Parts to split a product into: one below `minFlops`, else one per core.
    static func parts(m: Int, n: Int, k: Int) -> Int {
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        // Few-row products stream W from memory and are cheap per byte, so they split sooner.
        let minFlops: Double = m <= 4 ? 200_000 : 1_000_000
        return flops < minFlops ? 1 : threads
    }

    /// Runs `body(part, parts)` for part in 0..<parts, in parallel when parts > 1.
    static func run(parts: Int, _ body: (Int32, Int32) -> Void) {
        if parts <= 1 {
            body(0, 1)
            return
        }
        // The parts write disjoint outputs; concurrentPerform returns after all of them.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { shared.value(Int32($0), Int32(parts)) }
        }
    }

    // MARK: - Entry points with an explicit backend

    @usableFromInline
    static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                    m: Int, n: Int, k: Int, accumulate: Bool, backend: Int32) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.xwt: negative size m=\(m) n=\(n) k=\(k)")
        if m == 0 || n == 0 { return }
        let acc: Int32 = accumulate ? 1 : 0
        if usePool { prune_mm_run(PRUNE_MM_OP_XWT, backend, Int32(parts(m: m, n: n, k: k)), y, x, w, m, n, k, acc); return }
        run(parts: parts(m: m, n: n, k: k)) { p, np in
            prune_mm_xwt(backend, p, np, y, x, w, m, n, k, acc)
        }
    }

    @usableFromInline
    static func xwtPacked(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedMatrix, m: Int,
                          accumulate: Bool) {
        precondition(m >= 0, "Matmul.xwt: negative size m=\(m)")
        let n = w.n, k = w.k
        if m == 0 || n == 0 { return }
        let acc: Int32 = accumulate ? 1 : 0
        let backend = w.backend, wp = UnsafePointer(w.panels)
        if usePool { prune_mm_run(PRUNE_MM_OP_XWT_PACKED, backend, Int32(parts(m: m, n: n, k: k)), y, x, wp, m, n, k, acc); return }
        run(parts: parts(m: m, n: n, k: k)) { p, np in
            prune_mm_xwt_packed(backend, p, np, y, x, wp, m, n, k, acc)
        }
    }

    @usableFromInline
    static func dyw(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                    m: Int, n: Int, k: Int, accumulate: Bool, backend: Int32) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.dyw: negative size m=\(m) n=\(n) k=\(k)")
        if m == 0 || k == 0 { return }
        let acc: Int32 = accumulate ? 1 : 0
        if usePool { prune_mm_run(PRUNE_MM_OP_DYW, backend, Int32(parts(m: m, n: n, k: k)), dx, dy, w, m, n, k, acc); return }
        run(parts: parts(m: m, n: n, k: k)) { p, np in
            prune_mm_dyw(backend, p, np, dx, dy, w, m, n, k, acc)
        }
    }

    @usableFromInline
    static func dytx(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                     m: Int, n: Int, k: Int, accumulate: Bool, backend: Int32) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.dytx: negative size m=\(m) n=\(n) k=\(k)")
        if n == 0 || k == 0 { return }
        let acc: Int32 = accumulate ? 1 : 0
        // Few rows write n×k outputs from m×(n+k) inputs: split by the output's size.
        let p = m <= 4 ? parts(m: 4, n: n, k: k) : parts(m: m, n: n, k: k)
        if usePool { prune_mm_run(PRUNE_MM_OP_DYTX, backend, Int32(p), dw, dy, x, m, n, k, acc); return }
        run(parts: p) { p, np in
            prune_mm_dytx(backend, p, np, dw, dy, x, m, n, k, acc)
        }
    }
}

/// Hands a value to concurrent code whose safety the caller guarantees (disjoint writes, joined before return).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A weight W (n×k row-major) packed into the panel layout of the xwt micro-kernel.
///
/// Pack once per weight version and reuse it across calls; it holds its own copy, so W may change or
/// go away afterwards (repack after W changes).
public final class PackedMatrix: @unchecked Sendable {
    public let n: Int
    public let k: Int
    /// The backend whose panel width the layout follows.
    @usableFromInline let backend: Int32
    /// ceil(n / NR)·NR·k floats, 64-byte aligned, read-only after init.
    @usableFromInline let panels: UnsafeMutablePointer<Float>

    /// Packs W (n×k row-major) into the panel layout the xwt kernel wants.
    public convenience init(_ w: UnsafePointer<Float>, n: Int, k: Int) {
        self.init(w, n: n, k: k, backend: Matmul.bestBackend)
    }

    init(_ w: UnsafePointer<Float>, n: Int, k: Int, backend: Int32) {
        precondition(n >= 0 && k >= 0, "PackedMatrix: negative size n=\(n) k=\(k)")
        self.n = n
        self.k = k
        self.backend = backend
        let count = max(1, prune_mm_packed_count(backend, n, k))
        panels = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
        let dst = panels
        Matmul.run(parts: Matmul.parts(m: 4, n: n, k: k)) { p, np in
            prune_mm_pack_wt(backend, p, np, dst, w, n, k)
        }
    }

    deinit { UnsafeMutableRawPointer(panels).deallocate() }
}
