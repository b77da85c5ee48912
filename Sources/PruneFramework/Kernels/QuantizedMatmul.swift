import CKernels

/// The linear layer's forward Y = X·Wᵀ with W read in place as ggml-quantized rows (a GGUF tensor's bytes),
/// for the few rows of token generation.
///
/// Generating one token multiplies one row by every weight, so it is bound by reading the weights: Q4_K holds
/// a weight in 4.5 bits where `PackedMatrix` holds it in 32. The C kernels (qmatmul.c) dequantise each row of
/// W, in registers with AVX-512 and through a small f32 tile otherwise, to exactly the values `dequantize`
/// gives, and multiply it with the m rows of X kept in cache. Backends and threads are `Matmul`'s: AVX-512 or
/// AVX2+FMA (both also need F16C) or portable C, chosen from what the CPU reports, and the output rows split
/// over the same C thread pool (end-to-end speed: bench/run_generate.sh, BENCHMARKS.md).
/// W is read once per 8 or 16 rows of X: for longer inputs dequantise once and use `Matmul`.
public enum QuantizedMatmul {
    /// Whether rows of this type can be multiplied directly: F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
    /// Q4_K, Q5_K and Q6_K.
    public static func supports(_ type: GGMLType) -> Bool { prune_qmm_supports(Int32(type.rawValue)) != 0 }

    /// Y[m×n] = X[m×k] · Wᵀ, W n rows of `type`, row r at weight + r·rowBytes. accumulate: Y += instead of =.
    ///
    /// - y: m×n
    /// - x: m×k
    /// - weight: n rows of k elements, `rowBytes` apart (rowBytes ≥ type.byteCount(elements: k))
    /// Traps when the type is not supported or k is not a whole number of its blocks.
    public static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, m: Int, weight: UnsafeRawPointer,
                           type: GGMLType, n: Int, k: Int, rowBytes: Int, accumulate: Bool) {
        xwt(y, x, m: m, weight: weight, type: type, n: n, k: k, rowBytes: rowBytes, accumulate: accumulate,
            backend: Matmul.bestBackend)
    }

    /// The backend in use: "avx512", "avx2" or "portable".
    public static var backend: String { backendName(Matmul.bestBackend) }

    static func backendName(_ id: Int32) -> String { String(cString: prune_qmm_backend_name(id)) }

    static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, m: Int, weight: UnsafeRawPointer,
                    type: GGMLType, n: Int, k: Int, rowBytes: Int, accumulate: Bool, backend: Int32) {
        precondition(supports(type), "QuantizedMatmul.xwt: tensor type '\(type.name)' is not supported")
        precondition(m >= 0 && n >= 0 && k >= 0, "QuantizedMatmul.xwt: negative size m=\(m) n=\(n) k=\(k)")
        precondition(k % type.blockSize == 0,
                     "QuantizedMatmul.xwt: k=\(k) is not a whole number of \(type.blockSize)-element \(type.name) blocks")
        precondition(rowBytes >= k / type.blockSize * type.typeSize,
                     "QuantizedMatmul.xwt: rows of \(rowBytes) bytes cannot hold \(k) \(type.name) elements")
        guard m > 0 && n > 0 else { return }
        prune_qmm_run(backend, Int32(Matmul.parts(m: m, n: n, k: k)), y, x, weight, rowBytes, Int32(type.rawValue),
                      m, n, k, accumulate ? 1 : 0)
    }
}
