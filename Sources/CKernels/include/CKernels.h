#ifndef PRUNE_CKERNELS_H
#define PRUNE_CKERNELS_H
#include <stddef.h>

/// Returns a bit set of the CPU features the C kernels can use: 1 = AVX2+FMA, 2 = AVX-512F.
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

#endif
