// AVX-512 matmul backend: an 8×48 micro-kernel (24 zmm accumulators, 3 loads of B and 8 broadcasts
// of A per step), packing with 8×8 transposes, and the few-row paths. Every function carries its own
// target attribute; matmul.c calls them only when the CPU reports AVX-512F and AVX2+FMA.
#include "matmul_internal.h"
#ifdef PRUNE_MM_X86
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")))

#ifndef Z_MR
#define Z_MR 8
#endif
#ifndef Z_NV
#define Z_NV 3
#endif
#define Z_NR (16 * Z_NV)

static inline long z_min(long a, long b) { return a < b ? a : b; }

/// Lanes [0, count) of a 16-lane mask, count clamped to [0, 16].
T512 static inline __mmask16 z_mask(long count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

// MARK: - Micro-kernel

T512 static void z_kernel(long kc, const float *a, const float *b, long ldb, float *c, long ldc, int acc, long mr,
                         long nr) {
    __m512 s[Z_MR][Z_NV];
    for (int i = 0; i < Z_MR; i++)
        for (int j = 0; j < Z_NV; j++) s[i][j] = _mm512_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m512 bv[Z_NV];
        for (int j = 0; j < Z_NV; j++) bv[j] = _mm512_loadu_ps(b + 16 * j);
        for (int i = 0; i < Z_MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            for (int j = 0; j < Z_NV; j++) s[i][j] = _mm512_fmadd_ps(ai, bv[j], s[i][j]);
        }
        a += Z_MR;
        b += ldb;
    }
    if (mr == Z_MR && nr == Z_NR) {
        for (int i = 0; i < Z_MR; i++)
            for (int j = 0; j < Z_NV; j++) {
                float *cp = c + i * ldc + 16 * j;
                __m512 v = acc ? _mm512_add_ps(s[i][j], _mm512_loadu_ps(cp)) : s[i][j];
                _mm512_storeu_ps(cp, v);
            }
        return;
    }
    for (int i = 0; i < Z_MR; i++) {
        if (i >= mr) break;
        for (int j = 0; j < Z_NV; j++) {
            __mmask16 k = z_mask(nr - 16 * j);
            float *cp = c + i * ldc + 16 * j;
            __m512 v = acc ? _mm512_add_ps(s[i][j], _mm512_maskz_loadu_ps(k, cp)) : s[i][j];
            _mm512_mask_storeu_ps(cp, k, v);
        }
    }
}

// MARK: - Packing

/// dst[q·ds + i] = src[i·rs + q] for an 8×8 block.
T512 static inline void z_tr8x8(float *dst, long ds, const float *src, long rs) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + rs), r2 = _mm256_loadu_ps(src + 2 * rs),
           r3 = _mm256_loadu_ps(src + 3 * rs), r4 = _mm256_loadu_ps(src + 4 * rs), r5 = _mm256_loadu_ps(src + 5 * rs),
           r6 = _mm256_loadu_ps(src + 6 * rs), r7 = _mm256_loadu_ps(src + 7 * rs);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

T512 static void z_pack(float *dst, const float *src, long rs, long cs, long rows, long kc, long R) {
    if (R % 8 != 0 || (cs != 1 && rs != 1)) {
        prune_mm_pack_generic(dst, src, rs, cs, rows, kc, R);
        return;
    }
    if (rs == 1) {
        // Each step p is a contiguous run of `rows` floats. Blocks of 8 steps stay in L1 while they are
        // spread over the panels (whose strides are often multiples of 4 KiB, so one step at a time
        // would thrash an L1 set with a write stream per panel).
        for (long pb = 0; pb < kc; pb += 8) {
            long pe = z_min(kc, pb + 8);
            for (long r0 = 0; r0 < rows; r0 += R) {
                long rr = z_min(R, rows - r0);
                float *d = dst + (r0 / R) * kc * R;
                if (rr == R && R % 16 == 0) {
                    for (long p = pb; p < pe; p++)
                        for (long r = 0; r < R; r += 16)
                            _mm512_storeu_ps(d + p * R + r, _mm512_loadu_ps(src + p * cs + r0 + r));
                    continue;
                }
                if (rr == R && R == 8) {  // plain loads: a masked zmm load would touch the next line too
                    for (long p = pb; p < pe; p++) _mm256_storeu_ps(d + p * 8, _mm256_loadu_ps(src + p * cs + r0));
                    continue;
                }
                for (long p = pb; p < pe; p++) {
                    const float *sp = src + p * cs + r0;
                    float *dp = d + p * R;
                    for (long r = 0; r < R; r += 16) {
                        __mmask16 k = z_mask(rr - r);
                        __m512 v = _mm512_maskz_loadu_ps(k, sp + r);
                        if (R - r >= 16)
                            _mm512_storeu_ps(dp + r, v);
                        else
                            _mm256_storeu_ps(dp + r, _mm512_castps512_ps256(v));
                    }
                }
            }
        }
        return;
    }
    for (long r0 = 0; r0 < rows; r0 += R) {
        long rr = z_min(R, rows - r0);
        float *d = dst + (r0 / R) * kc * R;
        const float *s = src + r0 * rs;
        long r8 = rr & ~7L, p8 = kc & ~7L;
        for (long rb = 0; rb < r8; rb += 8) {
            for (long p = 0; p < p8; p += 8) z_tr8x8(d + p * R + rb, R, s + rb * rs + p, rs);
            for (long p = p8; p < kc; p++)
                for (long r = 0; r < 8; r++) d[p * R + rb + r] = s[(rb + r) * rs + p];
        }
        for (long r = r8; r < rr; r++)
            for (long p = 0; p < kc; p++) d[p * R + r] = s[r * rs + p];
        if (rr < R)
            for (long p = 0; p < kc; p++)
                for (long r = rr; r < R; r++) d[p * R + r] = 0;
    }
}

// MARK: - Few-row paths


#define Z_XWT_SMALL(M, J)                                                                                       \
    T512 static void z_xs_##M##_##J(float *y, long ldy, const float *x, const float *w, long j, long k, int acc) { \
        __m512 s[M][J];                                                                                         \
        for (int i = 0; i < M; i++)                                                                             \
            for (int t = 0; t < J; t++) s[i][t] = _mm512_setzero_ps();                                          \
        for (long p = 0; p < k; p += 16) {                                                                      \
            __mmask16 km = z_mask(k - p);                                                                       \
            __m512 wv[J];                                                                                       \
            for (int t = 0; t < J; t++) wv[t] = _mm512_maskz_loadu_ps(km, w + (j + t) * k + p);                 \
            for (int i = 0; i < M; i++) {                                                                       \
                __m512 xv = _mm512_maskz_loadu_ps(km, x + i * k + p);                                           \
                for (int t = 0; t < J; t++) s[i][t] = _mm512_fmadd_ps(xv, wv[t], s[i][t]);                      \
            }                                                                                                   \
        }                                                                                                       \
        for (int i = 0; i < M; i++)                                                                             \
            for (int t = 0; t < J; t++) {                                                                       \
                float r = _mm512_reduce_add_ps(s[i][t]);                                                        \
                float *yp = y + i * ldy + j + t;                                                                \
                *yp = acc ? *yp + r : r;                                                                        \
            }                                                                                                   \
    }
Z_XWT_SMALL(1, 8) Z_XWT_SMALL(1, 1)
Z_XWT_SMALL(2, 8) Z_XWT_SMALL(2, 1)
Z_XWT_SMALL(3, 4) Z_XWT_SMALL(3, 1)
Z_XWT_SMALL(4, 4) Z_XWT_SMALL(4, 1)

T512 static void z_xwt_small(float *y, long ldy, const float *x, const float *w, long m, long j0, long j1, long k,
                             int acc) {
    long j = j0;
    switch (m) {
    case 1:
        for (; j + 8 <= j1; j += 8) z_xs_1_8(y, ldy, x, w, j, k, acc);
        for (; j < j1; j++) z_xs_1_1(y, ldy, x, w, j, k, acc);
        break;
    case 2:
        for (; j + 8 <= j1; j += 8) z_xs_2_8(y, ldy, x, w, j, k, acc);
        for (; j < j1; j++) z_xs_2_1(y, ldy, x, w, j, k, acc);
        break;
    case 3:
        for (; j + 4 <= j1; j += 4) z_xs_3_4(y, ldy, x, w, j, k, acc);
        for (; j < j1; j++) z_xs_3_1(y, ldy, x, w, j, k, acc);
        break;
    case 4:
        for (; j + 4 <= j1; j += 4) z_xs_4_4(y, ldy, x, w, j, k, acc);
        for (; j < j1; j++) z_xs_4_1(y, ldy, x, w, j, k, acc);
        break;
    default:
        break;
    }
}

#define Z_XWTP_SMALL(M)                                                                                        \
    T512 static void z_xp_##M(float *y, long ldy, const float *x, const float *wp, long n, long p0, long p1,    \
                              long k, int acc) {                                                               \
        for (long pan = p0; pan < p1; pan++) {                                                                 \
            const float *b = wp + pan * k * Z_NR;                                                              \
            __m512 s[M][Z_NV];                                                                                 \
            for (int i = 0; i < M; i++)                                                                        \
                for (int t = 0; t < Z_NV; t++) s[i][t] = _mm512_setzero_ps();                                  \
            for (long p = 0; p < k; p++) {                                                                     \
                __m512 bv[Z_NV];                                                                               \
                for (int t = 0; t < Z_NV; t++) bv[t] = _mm512_load_ps(b + p * Z_NR + 16 * t);                  \
                for (int i = 0; i < M; i++) {                                                                  \
                    __m512 xi = _mm512_set1_ps(x[i * k + p]);                                                  \
                    for (int t = 0; t < Z_NV; t++) s[i][t] = _mm512_fmadd_ps(xi, bv[t], s[i][t]);              \
                }                                                                                              \
            }                                                                                                  \
            long nr = n - pan * Z_NR;                                                                          \
            for (int i = 0; i < M; i++)                                                                        \
                for (int t = 0; t < Z_NV; t++) {                                                               \
                    __mmask16 km = z_mask(nr - 16 * t);                                                        \
                    float *cp = y + i * ldy + pan * Z_NR + 16 * t;                                             \
                    __m512 v = acc ? _mm512_add_ps(s[i][t], _mm512_maskz_loadu_ps(km, cp)) : s[i][t];          \
                    _mm512_mask_storeu_ps(cp, km, v);                                                          \
                }                                                                                              \
        }                                                                                                      \
    }
Z_XWTP_SMALL(1) Z_XWTP_SMALL(2) Z_XWTP_SMALL(3) Z_XWTP_SMALL(4)

T512 static void z_xwtp_small(float *y, long ldy, const float *x, const float *wp, long m, long n, long p0, long p1,
                              long k, int acc) {
    switch (m) {
    case 1: z_xp_1(y, ldy, x, wp, n, p0, p1, k, acc); break;
    case 2: z_xp_2(y, ldy, x, wp, n, p0, p1, k, acc); break;
    case 3: z_xp_3(y, ldy, x, wp, n, p0, p1, k, acc); break;
    case 4: z_xp_4(y, ldy, x, wp, n, p0, p1, k, acc); break;
    default: break;
    }
}

/// dyw for m ≤ 4 rows: streams W row by row over the columns [c0, c1), 4 rows of W per pass, into
/// partial sums kept in an L1 buffer (one contiguous run of W per row keeps the prefetchers busy).
#define Z_DW_CHUNK 512
#define Z_DYW_SMALL(M)                                                                                         \
    T512 static void z_dw_##M(float *dx, const float *dy, const float *w, long n, long k, long c0, long c1,     \
                              int acc) {                                                                       \
        float d[M][Z_DW_CHUNK] __attribute__((aligned(64)));                                                   \
        int pf = n * k > (1L << 22); /* W is streamed from memory: prefetch the next 4 rows */                 \
        for (long cb = c0; cb < c1; cb += Z_DW_CHUNK) {                                                        \
            long cn = z_min(Z_DW_CHUNK, c1 - cb), cfull = cn & ~15L;                                           \
            __mmask16 kt = z_mask(cn - cfull);                                                                 \
            for (int i = 0; i < M; i++)                                                                        \
                for (long c = 0; c < cn; c += 16) _mm512_store_ps(d[i] + c, _mm512_setzero_ps());              \
            long j = 0;                                                                                        \
            for (; j + 4 <= n; j += 4) {                                                                       \
                const float *w0 = w + j * k + cb, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;                    \
                __m512 g[M][4];                                                                                \
                for (int i = 0; i < M; i++)                                                                    \
                    for (int t = 0; t < 4; t++) g[i][t] = _mm512_set1_ps(dy[i * n + j + t]);                   \
                for (long c = 0; c < cn; c += 16) {                                                            \
                    __mmask16 km = c < cfull ? (__mmask16)0xFFFF : kt;                                         \
                    __m512 v0 = _mm512_maskz_loadu_ps(km, w0 + c), v1 = _mm512_maskz_loadu_ps(km, w1 + c);    \
                    __m512 v2 = _mm512_maskz_loadu_ps(km, w2 + c), v3 = _mm512_maskz_loadu_ps(km, w3 + c);    \
                    if (pf)                                                                                    \
                        for (int t = 4; t < 8; t++) _mm_prefetch((const char *)(w0 + t * k + c), _MM_HINT_T0); \
                    for (int i = 0; i < M; i++) {                                                              \
                        __m512 t0 = _mm512_fmadd_ps(g[i][0], v0, _mm512_load_ps(d[i] + c));                    \
                        __m512 t1 = _mm512_mul_ps(g[i][1], v1);                                                \
                        t0 = _mm512_fmadd_ps(g[i][2], v2, t0);                                                 \
                        t1 = _mm512_fmadd_ps(g[i][3], v3, t1);                                                 \
                        _mm512_store_ps(d[i] + c, _mm512_add_ps(t0, t1));                                      \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
            for (; j < n; j++) {                                                                               \
                const float *w0 = w + j * k + cb;                                                              \
                for (long c = 0; c < cn; c += 16) {                                                            \
                    __mmask16 km = c < cfull ? (__mmask16)0xFFFF : kt;                                         \
                    __m512 v0 = _mm512_maskz_loadu_ps(km, w0 + c);                                             \
                    for (int i = 0; i < M; i++)                                                                \
                        _mm512_store_ps(d[i] + c, _mm512_fmadd_ps(_mm512_set1_ps(dy[i * n + j]), v0,           \
                                                                  _mm512_load_ps(d[i] + c)));                  \
                }                                                                                              \
            }                                                                                                  \
            for (int i = 0; i < M; i++)                                                                        \
                for (long c = 0; c < cn; c += 16) {                                                            \
                    __mmask16 km = c < cfull ? (__mmask16)0xFFFF : kt;                                         \
                    float *cp = dx + i * k + cb + c;                                                           \
                    __m512 v = _mm512_load_ps(d[i] + c);                                                       \
                    if (acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(km, cp));                              \
                    _mm512_mask_storeu_ps(cp, km, v);                                                          \
                }                                                                                              \
        }                                                                                                      \
    }
Z_DYW_SMALL(1) Z_DYW_SMALL(2) Z_DYW_SMALL(3) Z_DYW_SMALL(4)

T512 static void z_dyw_small(float *dx, const float *dy, const float *w, long m, long n, long k, long c0, long c1,
                             int acc) {
    switch (m) {
    case 1: z_dw_1(dx, dy, w, n, k, c0, c1, acc); break;
    case 2: z_dw_2(dx, dy, w, n, k, c0, c1, acc); break;
    case 3: z_dw_3(dx, dy, w, n, k, c0, c1, acc); break;
    case 4: z_dw_4(dx, dy, w, n, k, c0, c1, acc); break;
    default: break;
    }
}

T512 static void z_dytx_small(float *dw, const float *dy, const float *x, long m, long n, long k, long j0, long j1,
                              int acc) {
    for (long j = j0; j < j1; j++) {
        float *d = dw + j * k;
        for (long c = 0; c < k; c += 16) {
            __mmask16 km = z_mask(k - c);
            __m512 v = acc ? _mm512_maskz_loadu_ps(km, d + c) : _mm512_setzero_ps();
            for (long i = 0; i < m; i++)
                v = _mm512_fmadd_ps(_mm512_set1_ps(dy[i * n + j]), _mm512_maskz_loadu_ps(km, x + i * k + c), v);
            _mm512_mask_storeu_ps(d + c, km, v);
        }
    }
}

#ifndef Z_MC
#define Z_MC 128
#endif
#ifndef Z_KC
#define Z_KC 384
#endif
#ifndef Z_NC
#define Z_NC 3072
#endif

const prune_mm_backend_t prune_mm_avx512_backend = {
    .name = "avx512", .mr = Z_MR, .nr = Z_NR, .mc = Z_MC, .kc = Z_KC, .nc = Z_NC,
    .kernel = z_kernel, .pack = z_pack,
    .xwt_small = z_xwt_small, .xwtp_small = z_xwtp_small, .dyw_small = z_dyw_small, .dytx_small = z_dytx_small,
};

#endif
