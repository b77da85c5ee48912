// AVX2+FMA matmul backend: a 6×16 micro-kernel (12 ymm accumulators), packing with 8×8 transposes, and
// the few-row paths. Every function carries its own target attribute; matmul.c calls them only when the
// CPU reports AVX2 and FMA.
#include "matmul_internal.h"
#ifdef PRUNE_MM_X86
#include <immintrin.h>

#define T256 __attribute__((target("avx2,fma")))

enum { H_MR = 6, H_NV = 2, H_NR = 16 };

static inline long h_min(long a, long b) { return a < b ? a : b; }

/// Lane i is on (all bits set) when i < count.
T256 static inline __m256i h_mask(long count) {
    long c = count < 0 ? 0 : count > 8 ? 8 : count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

T256 static inline float h_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// MARK: - Micro-kernel

T256 static void h_kernel(long kc, const float *a, const float *b, long ldb, float *c, long ldc, int acc, long mr,
                         long nr) {
    __m256 s[H_MR][H_NV];
    for (int i = 0; i < H_MR; i++)
        for (int j = 0; j < H_NV; j++) s[i][j] = _mm256_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        for (int i = 0; i < H_MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            s[i][0] = _mm256_fmadd_ps(ai, b0, s[i][0]);
            s[i][1] = _mm256_fmadd_ps(ai, b1, s[i][1]);
        }
        a += H_MR;
        b += ldb;
    }
    if (mr == H_MR && nr == H_NR) {
        for (int i = 0; i < H_MR; i++)
            for (int j = 0; j < H_NV; j++) {
                float *cp = c + i * ldc + 8 * j;
                __m256 v = acc ? _mm256_add_ps(s[i][j], _mm256_loadu_ps(cp)) : s[i][j];
                _mm256_storeu_ps(cp, v);
            }
        return;
    }
    for (int i = 0; i < H_MR; i++) {
        if (i >= mr) break;
        for (int j = 0; j < H_NV; j++) {
            __m256i k = h_mask(nr - 8 * j);
            float *cp = c + i * ldc + 8 * j;
            __m256 v = acc ? _mm256_add_ps(s[i][j], _mm256_maskload_ps(cp, k)) : s[i][j];
            _mm256_maskstore_ps(cp, k, v);
        }
    }
}

// MARK: - Packing

/// dst[q·ds + i] = src[i·rs + q] for an 8×8 block.
T256 static inline void h_tr8x8(float *dst, long ds, const float *src, long rs) {
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

T256 static void h_pack(float *dst, const float *src, long rs, long cs, long rows, long kc, long R) {
    if (cs != 1 || R % 8 != 0) {
        prune_mm_pack_generic(dst, src, rs, cs, rows, kc, R);
        return;
    }
    for (long r0 = 0; r0 < rows; r0 += R) {
        long rr = h_min(R, rows - r0);
        float *d = dst + (r0 / R) * kc * R;
        const float *s = src + r0 * rs;
        long r8 = rr & ~7L, p8 = kc & ~7L;
        for (long rb = 0; rb < r8; rb += 8) {
            for (long p = 0; p < p8; p += 8) h_tr8x8(d + p * R + rb, R, s + rb * rs + p, rs);
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

T256 static void h_xwt_small(float *y, long ldy, const float *x, const float *w, long m, long j0, long j1, long k,
                             int acc) {
    long k8 = k & ~7L;
    for (long j = j0; j < j1; j++) {
        const float *wj = w + j * k;
        for (long i = 0; i < m; i++) {
            const float *xi = x + i * k;
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
            long p = 0;
            for (; p + 16 <= k8; p += 16) {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(xi + p), _mm256_loadu_ps(wj + p), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(xi + p + 8), _mm256_loadu_ps(wj + p + 8), s1);
            }
            for (; p < k8; p += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(xi + p), _mm256_loadu_ps(wj + p), s0);
            float r = h_sum(_mm256_add_ps(s0, s1));
            for (; p < k; p++) r += xi[p] * wj[p];
            float *yp = y + i * ldy + j;
            *yp = acc ? *yp + r : r;
        }
    }
}

T256 static void h_xwtp_small(float *y, long ldy, const float *x, const float *wp, long m, long n, long p0, long p1,
                              long k, int acc) {
    for (long pan = p0; pan < p1; pan++) {
        const float *b = wp + pan * k * H_NR;
        long nr = n - pan * H_NR;
        __m256i k0 = h_mask(nr), k1 = h_mask(nr - 8);
        for (long i = 0; i < m; i++) {
            const float *xi = x + i * k;
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
            __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
            long p = 0;
            for (; p + 2 <= k; p += 2) {
                __m256 a0 = _mm256_broadcast_ss(xi + p), a1 = _mm256_broadcast_ss(xi + p + 1);
                s0 = _mm256_fmadd_ps(a0, _mm256_load_ps(b + p * H_NR), s0);
                s1 = _mm256_fmadd_ps(a0, _mm256_load_ps(b + p * H_NR + 8), s1);
                t0 = _mm256_fmadd_ps(a1, _mm256_load_ps(b + (p + 1) * H_NR), t0);
                t1 = _mm256_fmadd_ps(a1, _mm256_load_ps(b + (p + 1) * H_NR + 8), t1);
            }
            for (; p < k; p++) {
                __m256 a0 = _mm256_broadcast_ss(xi + p);
                s0 = _mm256_fmadd_ps(a0, _mm256_load_ps(b + p * H_NR), s0);
                s1 = _mm256_fmadd_ps(a0, _mm256_load_ps(b + p * H_NR + 8), s1);
            }
            s0 = _mm256_add_ps(s0, t0);
            s1 = _mm256_add_ps(s1, t1);
            float *cp = y + i * ldy + pan * H_NR;
            if (acc) {
                s0 = _mm256_add_ps(s0, _mm256_maskload_ps(cp, k0));
                s1 = _mm256_add_ps(s1, _mm256_maskload_ps(cp + 8, k1));
            }
            _mm256_maskstore_ps(cp, k0, s0);
            _mm256_maskstore_ps(cp + 8, k1, s1);
        }
    }
}

T256 static void h_dyw_small(float *dx, const float *dy, const float *w, long m, long n, long k, long c0, long c1,
                             int acc) {
    for (long i = 0; i < m; i++) {
        const float *g = dy + i * n;
        float *d = dx + i * k;
        for (long c = c0; c < c1; c += 32) {
            __m256i km[4];
            __m256 s[4];
            for (int t = 0; t < 4; t++) {
                km[t] = h_mask(c1 - c - 8 * t);
                s[t] = _mm256_setzero_ps();
            }
            for (long j = 0; j < n; j++) {
                __m256 gj = _mm256_broadcast_ss(g + j);
                for (int t = 0; t < 4; t++)
                    s[t] = _mm256_fmadd_ps(gj, _mm256_maskload_ps(w + j * k + c + 8 * t, km[t]), s[t]);
            }
            for (int t = 0; t < 4; t++) {
                float *cp = d + c + 8 * t;
                __m256 v = acc ? _mm256_add_ps(s[t], _mm256_maskload_ps(cp, km[t])) : s[t];
                _mm256_maskstore_ps(cp, km[t], v);
            }
        }
    }
}

T256 static void h_dytx_small(float *dw, const float *dy, const float *x, long m, long n, long k, long j0, long j1,
                              int acc) {
    for (long j = j0; j < j1; j++) {
        float *d = dw + j * k;
        for (long c = 0; c < k; c += 8) {
            __m256i km = h_mask(k - c);
            __m256 v = acc ? _mm256_maskload_ps(d + c, km) : _mm256_setzero_ps();
            for (long i = 0; i < m; i++)
                v = _mm256_fmadd_ps(_mm256_broadcast_ss(dy + i * n + j), _mm256_maskload_ps(x + i * k + c, km), v);
            _mm256_maskstore_ps(d + c, km, v);
        }
    }
}

const prune_mm_backend_t prune_mm_avx2_backend = {
    .name = "avx2", .mr = H_MR, .nr = H_NR, .mc = 120, .kc = 256, .nc = 3072,
    .kernel = h_kernel, .pack = h_pack,
    .xwt_small = h_xwt_small, .xwtp_small = h_xwtp_small, .dyw_small = h_dyw_small, .dytx_small = h_dytx_small,
};

#endif
