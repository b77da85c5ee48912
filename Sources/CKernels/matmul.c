// Matrix multiply for the linear layers: the blocked GEMM driver, the few-row paths, the backend
// choice, and the portable C backend. The AVX2 and AVX-512 micro-kernels live in matmul_avx2.c and
// matmul_avx512.c, compiled per function for their ISA and chosen at run time, so the package needs
// no build flags.
//
// The GEMM follows the BLIS/GotoBLAS scheme: C[M×N] (+)= A[M×K]·B[K×N] is cut into blocks of
// NC columns × KC depth (B packed into panels of NR columns) and MC rows (A packed into panels of MR
// rows); a register-blocked MR×NR micro-kernel computes each tile. The three forms map onto it:
//   xwt   Y  = X·Wᵀ   A = X (m×k),   B(p,j) = W[j,p],  M = m, N = n, K = k
//   dyw   dX = dY·W   A = dY (m×n),  B = W (n×k),      M = m, N = k, K = n
//   dytx  dW = dYᵀ·X  A(i,p) = dY[p,i], B = X (m×k),   M = n, N = k, K = m
// Work is split into `nparts` parts computed by separate threads (the caller runs them).
#include "CKernels.h"
#include "matmul_internal.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static inline long mm_min(long a, long b) { return a < b ? a : b; }

/// Rows up to which xwt with an unpacked W uses dot products instead of the GEMM.
#ifndef MM_XWT_DOT_M
#define MM_XWT_DOT_M 12
#endif

/// dyw and dytx read their row-major B (W, X) in place instead of packing it (1.1–1.3× at m = 128).
#ifndef MM_BDIRECT
#define MM_BDIRECT 1
#endif

// MARK: - Per-thread packing buffers

typedef struct { float *buf[2]; size_t cap[2]; } mm_tls;
static pthread_key_t mm_key;
static pthread_once_t mm_once = PTHREAD_ONCE_INIT;

static void mm_tls_free(void *p) {
    mm_tls *t = p;
    free(t->buf[0]);
    free(t->buf[1]);
    free(t);
}

static void mm_key_init(void) { pthread_key_create(&mm_key, mm_tls_free); }

/// A 64-byte aligned buffer of at least `count` floats owned by the calling thread (slot 0: A, 1: B).
static float *mm_buffer(int slot, size_t count) {
    pthread_once(&mm_once, mm_key_init);
    mm_tls *t = pthread_getspecific(mm_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t) abort();
        pthread_setspecific(mm_key, t);
    }
    if (t->cap[slot] < count) {
        free(t->buf[slot]);
        size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
        t->buf[slot] = aligned_alloc(64, bytes);
        if (!t->buf[slot]) abort();
        t->cap[slot] = count;
    }
    return t->buf[slot];
}

// MARK: - Portable backend

void prune_mm_pack_generic(float *dst, const float *src, long rs, long cs, long rows, long kc, long R) {
    if (rs == 1) {
        // Each step p is a contiguous run of `rows` floats: read it once, front to back, into every panel.
        for (long p = 0; p < kc; p++) {
            const float *sp = src + p * cs;
            for (long r0 = 0; r0 < rows; r0 += R) {
                long rr = mm_min(R, rows - r0);
                float *dp = dst + (r0 / R) * kc * R + p * R;
                for (long r = 0; r < rr; r++) dp[r] = sp[r0 + r];
                for (long r = rr; r < R; r++) dp[r] = 0;
            }
        }
        return;
    }
    for (long r0 = 0; r0 < rows; r0 += R) {
        long rr = mm_min(R, rows - r0);
        float *d = dst + (r0 / R) * kc * R;
        const float *s = src + r0 * rs;
        if (cs == 1) {
            for (long r = 0; r < rr; r++) {
                const float *sr = s + r * rs;
                for (long p = 0; p < kc; p++) d[p * R + r] = sr[p];
            }
        } else {
            for (long p = 0; p < kc; p++)
                for (long r = 0; r < rr; r++) d[p * R + r] = s[r * rs + p];
        }
        if (rr < R)
            for (long p = 0; p < kc; p++)
                for (long r = rr; r < R; r++) d[p * R + r] = 0;
    }
}

enum { P_MR = 4, P_NR = 16 };

static void p_kernel(long kc, const float *a, const float *b, long ldb, float *c, long ldc, int acc, long mr,
                     long nr) {
    float s[P_MR][P_NR] = {{0}};
    for (long p = 0; p < kc; p++) {
        for (int i = 0; i < P_MR; i++) {
            float ai = a[i];
            for (int j = 0; j < P_NR; j++) s[i][j] += ai * b[j];
        }
        a += P_MR;
        b += ldb;
    }
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (acc)
            for (long j = 0; j < nr; j++) ci[j] += s[i][j];
        else
            for (long j = 0; j < nr; j++) ci[j] = s[i][j];
    }
}

static void p_xwt_small(float *y, long ldy, const float *x, const float *w, long m, long j0, long j1, long k,
                        int acc) {
    for (long j = j0; j < j1; j++) {
        const float *wj = w + j * k;
        for (long i = 0; i < m; i++) {
            const float *xi = x + i * k;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            long p = 0;
            for (; p + 4 <= k; p += 4) {
                s0 += xi[p] * wj[p];
                s1 += xi[p + 1] * wj[p + 1];
                s2 += xi[p + 2] * wj[p + 2];
                s3 += xi[p + 3] * wj[p + 3];
            }
            for (; p < k; p++) s0 += xi[p] * wj[p];
            float s = (s0 + s1) + (s2 + s3);
            y[i * ldy + j] = acc ? y[i * ldy + j] + s : s;
        }
    }
}

static void p_xwtp_small(float *y, long ldy, const float *x, const float *wp, long m, long n, long p0, long p1,
                         long k, int acc) {
    for (long pan = p0; pan < p1; pan++) {
        const float *b = wp + pan * k * P_NR;
        long nr = mm_min(P_NR, n - pan * P_NR);
        for (long i = 0; i < m; i++) {
            float s[P_NR] = {0};
            const float *xi = x + i * k;
            for (long p = 0; p < k; p++)
                for (int j = 0; j < P_NR; j++) s[j] += xi[p] * b[p * P_NR + j];
            float *yi = y + i * ldy + pan * P_NR;
            for (long j = 0; j < nr; j++) yi[j] = acc ? yi[j] + s[j] : s[j];
        }
    }
}

static void p_dyw_small(float *dx, const float *dy, const float *w, long m, long n, long k, long c0, long c1,
                        int acc) {
    for (long i = 0; i < m; i++) {
        float *d = dx + i * k;
        if (!acc)
            for (long c = c0; c < c1; c++) d[c] = 0;
        for (long j = 0; j < n; j++) {
            float g = dy[i * n + j];
            const float *wj = w + j * k;
            for (long c = c0; c < c1; c++) d[c] += g * wj[c];
        }
    }
}

static void p_dytx_small(float *dw, const float *dy, const float *x, long m, long n, long k, long j0, long j1,
                         int acc) {
    for (long j = j0; j < j1; j++) {
        float *d = dw + j * k;
        if (!acc)
            for (long c = 0; c < k; c++) d[c] = 0;
        for (long i = 0; i < m; i++) {
            float g = dy[i * n + j];
            const float *xi = x + i * k;
            for (long c = 0; c < k; c++) d[c] += g * xi[c];
        }
    }
}

const prune_mm_backend_t prune_mm_portable_backend = {
    .name = "portable", .mr = P_MR, .nr = P_NR, .mc = 128, .kc = 256, .nc = 2048,
    .kernel = p_kernel, .pack = prune_mm_pack_generic,
    .xwt_small = p_xwt_small, .xwtp_small = p_xwtp_small, .dyw_small = p_dyw_small, .dytx_small = p_dytx_small,
};

// MARK: - Backend choice

static const prune_mm_backend_t *mm_backend(int id) {
#ifdef PRUNE_MM_X86
    int f = prune_cpu_features();
    if (id >= PRUNE_MM_AVX512 && (f & 2) && (f & 1)) return &prune_mm_avx512_backend;
    if (id >= PRUNE_MM_AVX2 && (f & 1)) return &prune_mm_avx2_backend;
#else
    (void)id;
#endif
    return &prune_mm_portable_backend;
}

int prune_mm_best_backend(void) {
#ifdef PRUNE_MM_X86
    int f = prune_cpu_features();
    if ((f & 2) && (f & 1)) return PRUNE_MM_AVX512;
    if (f & 1) return PRUNE_MM_AVX2;
#endif
    return PRUNE_MM_PORTABLE;
}

const char *prune_mm_backend_name(int backend) { return mm_backend(backend)->name; }

long prune_mm_panel_width(int backend) { return mm_backend(backend)->nr; }

long prune_mm_packed_count(int backend, long n, long k) {
    long nr = mm_backend(backend)->nr;
    return (n + nr - 1) / nr * nr * k;
}

static void mm_split(long total, long unit, int part, int nparts, long *lo, long *hi);

void prune_mm_pack_wt(int backend, int part, int nparts, float *dst, const float *w, long n, long k) {
    const prune_mm_backend_t *be = mm_backend(backend);
    long r0, r1;
    mm_split(n, be->nr, part, nparts, &r0, &r1);
    if (r0 < r1) be->pack(dst + r0 * k, w + r0 * k, k, 1, r1 - r0, k, be->nr);
}

// MARK: - Driver

/// Units [0, ceil(total/unit)) split evenly in nparts; part's range in elements.
static void mm_split(long total, long unit, int part, int nparts, long *lo, long *hi) {
    long units = (total + unit - 1) / unit;
    *lo = mm_min(units * part / nparts * unit, total);
    *hi = mm_min(units * (part + 1) / nparts * unit, total);
}

static void mm_zero(float *c, long ldc, long m, long n) {
    for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
}

/// One block: C[mc × nc] (+)= Ap · B over depth kc, with C at column jc of row block `c`.
/// B comes from, in this order: pre-packed panels `bp` (full K, steps pc ..< pc + kc); row-major `b`
/// read in place (row stride rsb, steps from pc; a last partial panel is packed into bbuf here); or
/// panels already packed in bbuf.
static void mm_block(const prune_mm_backend_t *be, const float *abuf, long mc, long kc, const float *bp,
                     const float *b, long rsb, long pc, long K, long jc, long nc, float *bbuf, float *c, long ldc,
                     int acc) {
    const long MR = be->mr, NR = be->nr;
    long nfull = nc / NR * NR;
    if (!bp && b && nfull < nc) be->pack(bbuf, b + pc * rsb + jc + nfull, 1, rsb, nc - nfull, kc, NR);
    for (long jr = 0; jr < nc; jr += NR) {
        const float *bpan;
        long ldb = NR;
        if (bp)
            bpan = bp + ((jc + jr) / NR) * K * NR + pc * NR;
        else if (!b)
            bpan = bbuf + (jr / NR) * kc * NR;
        else if (jr < nfull) {
            bpan = b + pc * rsb + jc + jr;
            ldb = rsb;
        } else
            bpan = bbuf;
        long nr = mm_min(NR, nc - jr);
        for (long ir = 0; ir < mc; ir += MR)
            be->kernel(kc, abuf + ir * kc, bpan, ldb, c + ir * ldc + jc + jr, ldc, acc, mm_min(MR, mc - ir), nr);
    }
}

/// C[m0:m1, n0:n1] (+)= A·B over the full K. A(i,p) = a[i·rsa + p·csa]; B(p,j) = b[p·rsb + j·csb],
/// or, when bp is not NULL, B is pre-packed in panels of NR columns over the full K (n0 a multiple of NR).
/// A row-major B (csb = 1) is read in place when `bdirect`, except for a last partial panel.
static void mm_gemm(const prune_mm_backend_t *be, long m0, long m1, long n0, long n1, long K,
                    const float *a, long rsa, long csa, const float *b, long rsb, long csb, const float *bp,
                    int bdirect, float *c, long ldc, int acc) {
    const long MR = be->mr, NR = be->nr, MC = be->mc, KC = be->kc, NC = be->nc;
    if (K == 0) {
        if (!acc) mm_zero(c + m0 * ldc + n0, ldc, m1 - m0, n1 - n0);
        return;
    }
    bdirect = bdirect && !bp && csb == 1;
    long kcmax = mm_min(KC, K);
    float *abuf = mm_buffer(0, (size_t)(mm_min(MC, m1 - m0) + MR) * kcmax);
    float *bbuf = bp ? NULL : mm_buffer(1, (size_t)(bdirect ? NR : mm_min(NC, n1 - n0) + NR) * kcmax);
    for (long jc = n0; jc < n1; jc += NC) {
        long nc = mm_min(NC, n1 - jc);
        if (bp || bdirect) {
            // B needs no packing (but for a partial last panel): finish each block of C over all of K
            // while it is in cache.
            for (long ic = m0; ic < m1; ic += MC) {
                long mc = mm_min(MC, m1 - ic);
                for (long pc = 0; pc < K; pc += KC) {
                    long kc = mm_min(KC, K - pc);
                    be->pack(abuf, a + ic * rsa + pc * csa, rsa, csa, mc, kc, MR);
                    mm_block(be, abuf, mc, kc, bp, b, rsb, pc, K, jc, nc, bbuf, c + ic * ldc, ldc, acc || pc > 0);
                }
            }
        } else {
            for (long pc = 0; pc < K; pc += KC) {
                long kc = mm_min(KC, K - pc);
                be->pack(bbuf, b + pc * rsb + jc * csb, csb, rsb, nc, kc, NR);
                for (long ic = m0; ic < m1; ic += MC) {
                    long mc = mm_min(MC, m1 - ic);
                    be->pack(abuf, a + ic * rsa + pc * csa, rsa, csa, mc, kc, MR);
                    mm_block(be, abuf, mc, kc, NULL, NULL, 0, pc, K, jc, nc, bbuf, c + ic * ldc, ldc, acc || pc > 0);
                }
            }
        }
    }
}

/// Splits the GEMM's output between parts along N or M, whichever duplicates less packing.
static void mm_gemm_part(const prune_mm_backend_t *be, int part, int nparts, long M, long N, long K,
                         const float *a, long rsa, long csa, const float *b, long rsb, long csb, const float *bp,
                         int bdirect, float *c, long ldc, int acc) {
    long m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (nparts > 1) {
        long panels = (N + be->nr - 1) / be->nr, mblocks = (M + be->mr - 1) / be->mr;
        // Splitting N makes every part pack all of A; splitting M makes every part pack (or, when B is
        // pre-packed or read in place, stream) all of B.
        double dupN = (double)M, dupM = bp || (bdirect && csb == 1) ? 0.25 * (double)N : (double)N;
        int splitN = dupN <= dupM;
        if (splitN && panels < 2 * nparts && mblocks >= 2 * nparts) splitN = 0;
        if (!splitN && mblocks < 2 * nparts && panels >= 2 * nparts) splitN = 1;
        if (splitN)
            mm_split(N, be->nr, part, nparts, &n0, &n1);
        else
            mm_split(M, be->mr, part, nparts, &m0, &m1);
    }
    if (m0 >= m1 || n0 >= n1) return;
    mm_gemm(be, m0, m1, n0, n1, K, a, rsa, csa, b, rsb, csb, bp, bdirect, c, ldc, acc);
}

void prune_mm_xwt(int backend, int part, int nparts, float *y, const float *x, const float *w, long m, long n,
                  long k, int acc) {
    const prune_mm_backend_t *be = mm_backend(backend);
    if (m <= PRUNE_MM_SMALL_M || (m <= MM_XWT_DOT_M && k >= 256)) {
        // Dot products of rows, 4 rows of X at a time: cheaper than packing Wᵀ for so few rows (unless
        // the rows are short and the horizontal sums dominate).
        long j0, j1;
        mm_split(n, 16, part, nparts, &j0, &j1);
        for (long i = 0; i < m && j0 < j1; i += PRUNE_MM_SMALL_M)
            be->xwt_small(y + i * n, n, x + i * k, w, mm_min(PRUNE_MM_SMALL_M, m - i), j0, j1, k, acc);
        return;
    }
    mm_gemm_part(be, part, nparts, m, n, k, x, k, 1, w, 1, k, NULL, 0, y, n, acc);
}

void prune_mm_xwt_packed(int backend, int part, int nparts, float *y, const float *x, const float *wp, long m,
                         long n, long k, int acc) {
    const prune_mm_backend_t *be = mm_backend(backend);
    if (m <= PRUNE_MM_SMALL_M) {
        long p0, p1;
        mm_split((n + be->nr - 1) / be->nr, 1, part, nparts, &p0, &p1);
        if (p0 < p1) be->xwtp_small(y, n, x, wp, m, n, p0, p1, k, acc);
        return;
    }
    mm_gemm_part(be, part, nparts, m, n, k, x, k, 1, NULL, 0, 0, wp, 0, y, n, acc);
}

void prune_mm_dyw(int backend, int part, int nparts, float *dx, const float *dy, const float *w, long m, long n,
                  long k, int acc) {
    const prune_mm_backend_t *be = mm_backend(backend);
    if (m <= PRUNE_MM_SMALL_M) {
        long c0, c1;
        mm_split(k, 16, part, nparts, &c0, &c1);
        if (c0 < c1) be->dyw_small(dx, dy, w, m, n, k, c0, c1, acc);
        return;
    }
    mm_gemm_part(be, part, nparts, m, k, n, dy, n, 1, w, k, 1, NULL, MM_BDIRECT, dx, k, acc);
}

void prune_mm_dytx(int backend, int part, int nparts, float *dw, const float *dy, const float *x, long m, long n,
                   long k, int acc) {
    const prune_mm_backend_t *be = mm_backend(backend);
    if (m <= PRUNE_MM_SMALL_M) {
        long j0, j1;
        mm_split(n, 1, part, nparts, &j0, &j1);
        if (j0 < j1) be->dytx_small(dw, dy, x, m, n, k, j0, j1, acc);
        return;
    }
    mm_gemm_part(be, part, nparts, n, k, m, dy, 1, n, x, k, 1, NULL, MM_BDIRECT, dw, k, acc);
}
