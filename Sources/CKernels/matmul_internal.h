// Private to CKernels: the table of matmul backends shared by matmul.c and the per-ISA files.
#ifndef PRUNE_MATMUL_INTERNAL_H
#define PRUNE_MATMUL_INTERNAL_H
#include <stddef.h>

/// Micro-kernel: C[mr×nr] (+)= Ap · Bp over kc steps.
/// - a: packed A micro-panel, kc × MR (MR values per step, zero-padded rows)
/// - b: B micro-panel, kc steps of NR values, ldb floats apart (NR when packed; zero-padded columns)
/// - c: row-major output tile, row stride ldc; only mr ≤ MR rows and nr ≤ NR columns are written
/// - acc: 0 stores, 1 adds to what c holds
typedef void (*prune_mm_kernel_fn)(long kc, const float *a, const float *b, long ldb, float *c, long ldc,
                                   int acc, long mr, long nr);

/// Packs `rows × kc` elements, element (r, p) at src[r·rs + p·cs], into panels of R rows:
/// dst[(r / R)·kc·R + p·R + r % R], padding the last panel with zeros.
typedef void (*prune_mm_pack_fn)(float *dst, const float *src, long rs, long cs, long rows, long kc, long R);

/// xwt for few rows, W unpacked: y[i·ldy + j] (+)= Σp x[i·k + p]·w[j·k + p], i < m ≤ 4, j0 ≤ j < j1.
typedef void (*prune_mm_xwt_small_fn)(float *y, long ldy, const float *x, const float *w, long m, long j0, long j1,
                                      long k, int acc);
/// xwt for few rows, W packed in panels of NR over the full k: panels [p0, p1), n columns in all.
typedef void (*prune_mm_xwtp_small_fn)(float *y, long ldy, const float *x, const float *wp, long m, long n, long p0,
                                       long p1, long k, int acc);
/// dyw for few rows: dx[i·k + c] (+)= Σj dy[i·n + j]·w[j·k + c], i < m ≤ 4, c0 ≤ c < c1.
typedef void (*prune_mm_dyw_small_fn)(float *dx, const float *dy, const float *w, long m, long n, long k, long c0,
                                      long c1, int acc);
/// dytx for few rows: dw[j·k + c] (+)= Σi dy[i·n + j]·x[i·k + c], i < m ≤ 4, j0 ≤ j < j1.
typedef void (*prune_mm_dytx_small_fn)(float *dw, const float *dy, const float *x, long m, long n, long k, long j0,
                                       long j1, int acc);

typedef struct {
    const char *name;
    long mr, nr;          // micro-tile
    long mc, kc, nc;      // cache blocks (mc multiple of mr, nc multiple of nr)
    prune_mm_kernel_fn kernel;
    prune_mm_pack_fn pack;
    prune_mm_xwt_small_fn xwt_small;
    prune_mm_xwtp_small_fn xwtp_small;
    prune_mm_dyw_small_fn dyw_small;
    prune_mm_dytx_small_fn dytx_small;
} prune_mm_backend_t;

extern const prune_mm_backend_t prune_mm_portable_backend;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PRUNE_MM_X86 1
extern const prune_mm_backend_t prune_mm_avx2_backend;
extern const prune_mm_backend_t prune_mm_avx512_backend;
#endif

/// The generic packing routine (any R, any strides), used by every backend for the cases it does not speed up.
void prune_mm_pack_generic(float *dst, const float *src, long rs, long cs, long rows, long kc, long R);

/// Rows handled by the few-row paths (xwt_small, dyw_small, ...).
#define PRUNE_MM_SMALL_M 4

#endif
