import CKernels
import Foundation

/// Matrix products of the linear layers, forward and backward, on CPU.
///
/// All matrices are row-major `Float`. The work is done by the C kernels in `CKernels` (matmul*.c): a
/// packed, register-blocked GEMM (8×48 micro-kernel with AVX-512, 6×16 with AVX2+FMA, 4×16 portable C)
/// chosen at run time from what the CPU reports, and dedicated paths for m ≤ 4 rows (token generation
/// is memory-bound: they stream W once). Products above ~1 MFLOP are split over `threads` (one per
/// core, or PRUNE_THREADS) threads of a small C thread pool whose workers spin
/// briefly between calls; on 2 cores it beat `DispatchQueue.concurrentPerform` by up to 1.7× at m = 1 and
/// by 0–10% at m ≥ 128.
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
    public static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedMatrix, m: Int,
                           accumulate: Bool = false) {
        precondition(m >= 0, "Matmul.xwt: negative size m=\(m)")
        launch(PRUNE_MM_OP_XWT_PACKED, backend: w.backend, y, x, UnsafePointer(w.panels), m: m, n: w.n, k: w.k,
               accumulate: accumulate, skip: m == 0 || w.n == 0)
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

    // MARK: - Backends and threads

    /// The fastest backend this CPU runs (a PRUNE_MM_* value).
    @usableFromInline
    static let bestBackend: Int32 = prune_mm_best_backend()

    /// Backends this CPU runs, slowest first (each falls back to the one below when the CPU lacks it).
    static var availableBackends: [Int32] { Array(Int32(PRUNE_MM_PORTABLE)...bestBackend) }

    static func backendName(_ id: Int32) -> String { String(cString: prune_mm_backend_name(id)) }

    /// PRUNE_THREADS when set; else the cores shared by the processes of an MPI run on this
    /// machine (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE, MPICH's MPI_LOCALNRANKS), one process: all.
    public static let threads: Int = {
        let env = ProcessInfo.processInfo.environment
        if let t = env["PRUNE_THREADS"].flatMap(Int.init), t > 0 { return t }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / Distributed.processesOnThisMachine)
    }()

    /// Parts to split a product into: one when it is small, else one per core.
    static func parts(m: Int, n: Int, k: Int) -> Int {
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        // Few-row products stream W and do little per byte: they pay for a second thread sooner.
        let minFlops: Double = m <= 4 ? 200_000 : 1_000_000
        return flops < minFlops ? 1 : threads
    }

    // MARK: - Entry points with an explicit backend

    @usableFromInline
    static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                    m: Int, n: Int, k: Int, accumulate: Bool, backend: Int32) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.xwt: negative size m=\(m) n=\(n) k=\(k)")
        launch(PRUNE_MM_OP_XWT, backend: backend, y, x, w, m: m, n: n, k: k, accumulate: accumulate,
               skip: m == 0 || n == 0)
    }

    @usableFromInline
    static func dyw(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                    m: Int, n: Int, k: Int, accumulate: Bool, backend: Int32) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.dyw: negative size m=\(m) n=\(n) k=\(k)")
        launch(PRUNE_MM_OP_DYW, backend: backend, dx, dy, w, m: m, n: n, k: k, accumulate: accumulate,
               skip: m == 0 || k == 0)
    }

    @usableFromInline
    static func dytx(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                     m: Int, n: Int, k: Int, accumulate: Bool, backend: Int32) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.dytx: negative size m=\(m) n=\(n) k=\(k)")
        launch(PRUNE_MM_OP_DYTX, backend: backend, dw, dy, x, m: m, n: n, k: k, accumulate: accumulate,
               skip: n == 0 || k == 0)
    }

    /// Runs one product on the C pool; `skip` when the output is empty.
    static func launch(_ op: Int32, backend: Int32, _ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>,
                       _ b: UnsafePointer<Float>, m: Int, n: Int, k: Int, accumulate: Bool, skip: Bool) {
        if skip { return }
        // dytx with few rows writes n×k outputs from m×(n+k) inputs: split it by the output's size.
        let p = op == PRUNE_MM_OP_DYTX && m <= 4 ? parts(m: 4, n: n, k: k) : parts(m: m, n: n, k: k)
        prune_mm_run(op, backend, Int32(p), out, a, b, m, n, k, accumulate ? 1 : 0)
    }
}

/// A weight W (n×k row-major) packed into the panel layout of the xwt micro-kernel.
///
/// Pack once per weight version and reuse it across calls; it holds its own copy, so W may change or
/// go away afterwards (repack after W changes). Immutable after init, so it may be shared across threads.
public final class PackedMatrix: @unchecked Sendable {
    public let n: Int
    public let k: Int
    /// The backend whose panel width the layout follows.
    let backend: Int32
    /// ceil(n / NR)·NR·k floats, 64-byte aligned.
    let panels: UnsafeMutablePointer<Float>

    /// Packs W (n×k row-major) into the panel layout the xwt kernel wants.
    public convenience init(_ w: UnsafePointer<Float>, n: Int, k: Int) {
        self.init(w, n: n, k: k, backend: Matmul.bestBackend)
    }

    convenience init(_ w: UnsafePointer<Float>, n: Int, k: Int, backend: Int32) {
        self.init(n: n, k: k, backend: backend)
        pack(rows: 0, w, count: n)
    }

    /// Packs an n×k matrix read `rows` at a time (chunks of about 1M values, whole panels each), so
    /// the f32 matrix never exists whole: `read(r, buf)` writes rows r, row-major, to buf.
    public convenience init(n: Int, k: Int, rows read: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        self.init(n: n, k: k, backend: Matmul.bestBackend)
        let nr = prune_mm_panel_width(backend)
        let step = max(1, (1 << 20) / max(k * nr, 1)) * nr
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: max(1, min(step, n) * k))
        defer { buf.deallocate() }
        for r0 in stride(from: 0, to: n, by: step) where k > 0 {
            let r1 = min(r0 + step, n)
            try read(r0..<r1, buf)
            pack(rows: r0, buf, count: r1 - r0)
        }
    }

    /// Packs `count` rows of W (row-major in w) as rows `first`... (a multiple of the panel width).
    private func pack(rows first: Int, _ w: UnsafePointer<Float>, count: Int) {
        guard count > 0 && k > 0 else { return }
        prune_mm_run(PRUNE_MM_OP_PACK, backend, Int32(Matmul.parts(m: 4, n: count, k: k)), panels + first * k, nil, w, 0, count, k, 0)
    }

    /// Allocates the panels of an n×k matrix, to be packed by the caller.
    private init(n: Int, k: Int, backend: Int32) {
        precondition(n >= 0 && k >= 0, "PackedMatrix: negative size n=\(n) k=\(k)")
        self.n = n
        self.k = k
        self.backend = backend
        let count = max(16, prune_mm_packed_count(backend, n, k))
        panels = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }

    deinit { UnsafeMutableRawPointer(panels).deallocate() }
}
