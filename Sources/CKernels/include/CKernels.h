#ifndef PRUNE_CKERNELS_H
#define PRUNE_CKERNELS_H
#include <stddef.h>

/// Returns a bit set of the CPU features the C kernels can use: 1 = AVX2+FMA, 2 = AVX-512F, 4 = F16C.
int prune_cpu_features(void);

// MARK: - Matrix multiply (matmul*.c)
//
// All matrices are row-major float32. Each operation is cut into `nparts` parts that the caller runs,
// one per thread, with part = 0 ..< nparts; the parts write disjoint parts of the output. `backend`
// is one of PRUNE_MM_*; one that the CPU lacks falls back to the best one below it. `acc` = 1 adds to
// the output instead of overwriting it.

#define PRUNE_MM_PORTABLE 0
#define PRUNE_MM_AVX2 1
#define PRUNE_MM_AVX512 2

/// The fastest backend this CPU runs.
int prune_mm_best_backend(void);
/// "portable", "avx2" or "avx512": the backend that `backend` resolves to on this CPU.
const char *prune_mm_backend_name(int backend);
/// Columns per packed panel (NR) of the backend's micro-kernel.
long prune_mm_panel_width(int backend);
/// Floats that prune_mm_pack_wt writes for an n×k weight: ceil(n / NR)·NR·k.
long prune_mm_packed_count(int backend, long n, long k);
/// Packs W (n×k) into panels of NR rows of W, k-major inside a panel, zero-padded: the layout
/// prune_mm_xwt_packed reads. dst: prune_mm_packed_count(backend, n, k) floats, 64-byte aligned.
void prune_mm_pack_wt(int backend, int part, int nparts, float *dst, const float *w, long n, long k);

/// Y[m×n] (+)= X[m×k]·Wᵀ, W n×k.
void prune_mm_xwt(int backend, int part, int nparts, float *y, const float *x, const float *w, long m, long n,
                  long k, int acc);
/// Y[m×n] (+)= X[m×k]·Wᵀ with W packed by prune_mm_pack_wt for the same backend.
void prune_mm_xwt_packed(int backend, int part, int nparts, float *y, const float *x, const float *wp, long m,
                         long n, long k, int acc);
/// dX[m×k] (+)= dY[m×n]·W, W n×k.
void prune_mm_dyw(int backend, int part, int nparts, float *dx, const float *dy, const float *w, long m, long n,
                  long k, int acc);
/// dW[n×k] (+)= dYᵀ·X, dY m×n, X m×k.
void prune_mm_dytx(int backend, int part, int nparts, float *dw, const float *dy, const float *x, long m, long n,
                   long k, int acc);

/// Operations of prune_mm_run.
#define PRUNE_MM_OP_XWT 0
#define PRUNE_MM_OP_XWT_PACKED 1
#define PRUNE_MM_OP_DYW 2
#define PRUNE_MM_OP_DYTX 3
#define PRUNE_MM_OP_PACK 4  /* prune_mm_pack_wt: out = dst, b = w */

/// Runs parts 0 ..< nparts of one operation (the arguments of the function above, in the same order)
/// on a pool of nparts − 1 worker threads and the calling thread, and returns when all are done.
/// A call made while the pool is busy (from another thread, or from inside a part) runs every part
/// on the calling thread.
void prune_mm_run(int op, int backend, int nparts, float *out, const float *a, const float *b, long m, long n, long k,
                  int acc);

// MARK: - Matrix multiply with a quantized weight (qmatmul.c)
//
// W is n rows of k elements stored as ggml blocks, as in a GGUF tensor: row r starts at w + r·row_bytes.
// `type` is a ggml type id (GGMLType's raw value): F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or
// Q6_K. Its elements take exactly the values of ggml's dequantize_row_*. Meant for few rows of X (token
// generation): W is read once per 8 (AVX-512) or 16 rows of X. `backend` is a PRUNE_MM_* (the x86 ones
// also need F16C); the parts split the output rows; `acc` as above.

/// 1 when prune_qmm_xwt reads rows of ggml type `type`, else 0.
int prune_qmm_supports(int type);
/// "portable", "avx2" or "avx512": the backend that `backend` resolves to for prune_qmm_xwt on this CPU.
const char *prune_qmm_backend_name(int backend);
/// Y[m×n] (+)= X[m×k]·Wᵀ, W n rows of `type`, k a multiple of its block size (else nothing is written).
void prune_qmm_xwt(int backend, int part, int nparts, float *y, const float *x, const void *w, long row_bytes,
                   int type, long m, long n, long k, int acc);
/// Runs parts 0 ..< nparts of prune_qmm_xwt (same arguments) as prune_mm_run runs its operations, on the same pool.
void prune_qmm_run(int backend, int nparts, float *y, const float *x, const void *w, long row_bytes, int type, long m,
                   long n, long k, int acc);

#endif
