// Matrix multiply with the weight read in place as ggml-quantized rows (a GGUF tensor): Y[m×n] (+)= X[m×k]·Wᵀ
// for few rows of X. Token generation is bound by reading the weights, and Q4_K holds a weight in 4.5 bits
// where its packed f32 copy takes 32.
//
// The parts split the output rows. Each output row is one pass over its row of W per group of rows of X (X stays
// in cache: m·k is small). The portable and AVX2 backends dequantise the row QMM_TILE elements at a time into an
// f32 tile on the stack and multiply the tile with the matching slice of the rows of X into one vector accumulator
// per row. The AVX-512 backend dequantises in registers for up to Z_ROWS rows of X, the accumulators in registers
// too: a 4- or 5-bit quant becomes its value with one vpermps from a table of the 16 (or 32) values of its block
// or sub-block, the other types convert and scale. It runs about twice as fast as the AVX2 tile.
//
// The element values are those of ggml's dequantize_row_* (and of the Swift `dequantize`) bit for bit: every
// product of scales and a quant has at most 11 + 7 + 5 significant bits, so it is exact in f32, and a fused
// multiply-add rounds exactly as the multiply then add written there.
//
// Every x86 function carries its own target attribute, as in matmul_avx2.c; both x86 backends also need F16C.
#include "CKernels.h"
#include "matmul_internal.h"
#include <stdint.h>
#include <string.h>
#ifdef PRUNE_MM_X86
#include <immintrin.h>
#endif

/// Elements dequantised at a time into the tile (a multiple of every block size).
#ifndef QMM_TILE
#define QMM_TILE 1024
#endif
/// Rows of X per pass over W with the tile.
#define QMM_ROWS 16
/// Floats of a row's accumulator in the tile backends (one vector of the widest).
#define QMM_LANES 16
/// Bytes of W prefetched ahead of the block being read: the hardware prefetcher alone falls behind, most on long rows
/// (X then comes from L2); 1.3–1.4× on 1536×8960 Q6_K from memory.
#define QMM_PREFETCH 2048

/// The ggml type ids read here.
enum {
    QMM_F16 = 1, QMM_Q4_0 = 2, QMM_Q4_1 = 3, QMM_Q5_0 = 6, QMM_Q5_1 = 7, QMM_Q8_0 = 8,
    QMM_Q4_K = 12, QMM_Q5_K = 13, QMM_Q6_K = 14, QMM_BF16 = 30,
};

enum { QMM_PORTABLE, QMM_AVX2, QMM_AVX512 };

static inline long qmm_min(long a, long b) { return a < b ? a : b; }

static inline uint16_t qmm_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/// Prefetches the cache lines of `bytes` bytes of W, QMM_PREFETCH bytes ahead of w.
static inline void qmm_prefetch(const uint8_t *w, long bytes) {
    for (long o = 0; o < bytes; o += 64) __builtin_prefetch(w + QMM_PREFETCH + o);
}

static inline uint32_t qmm_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// MARK: - Portable dequantisers (Dequantize.swift, operation for operation)

static inline float qmm_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t qmm_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/// IEEE half → float, exact, without branches (ggml's portable conversion): a normal half's exponent is rebased by
/// scaling, a subnormal one is m·2⁻²⁴ = (0.5 + m·2⁻²⁴) − 0.5.
static inline float qmm_half(uint16_t h) {
    uint32_t w = (uint32_t)h << 16, two_w = w + w;
    float normal = qmm_float((two_w >> 4) + (UINT32_C(0xE0) << 23)) * 0x1p-112f;
    float subnormal = qmm_float((two_w >> 17) | UINT32_C(126) << 23) - 0.5f;
    return qmm_float((w & UINT32_C(0x80000000)) | qmm_bits(two_w < UINT32_C(1) << 27 ? subnormal : normal));
}

static void p_deq_f16(const uint8_t *s, float *y, long count) {
    for (long i = 0; i < count; i++) y[i] = qmm_half(qmm_u16(s + 2 * i));
}

static void p_deq_bf16(const uint8_t *s, float *y, long count) {
    for (long i = 0; i < count; i++) y[i] = qmm_float((uint32_t)qmm_u16(s + 2 * i) << 16);
}

static void p_deq_q4_0(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 18, y += 32) {
        float d = qmm_half(qmm_u16(s));
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((s[2 + j] & 0xF) - 8) * d;
            y[j + 16] = (float)((s[2 + j] >> 4) - 8) * d;
        }
    }
}

static void p_deq_q4_1(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 20, y += 32) {
        float d = qmm_half(qmm_u16(s)), m = qmm_half(qmm_u16(s + 2));
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(s[4 + j] & 0xF) * d + m;
            y[j + 16] = (float)(s[4 + j] >> 4) * d + m;
        }
    }
}

/// Q5 quants j and j + 16 (j < 16) of a block: nibbles of qs[j], 5th bits from bits j and j + 16 of qh.
static inline int qmm_q5_lo(const uint8_t *qs, uint32_t qh, int j) { return (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4; }
static inline int qmm_q5_hi(const uint8_t *qs, uint32_t qh, int j) { return (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4; }

static void p_deq_q5_0(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 22, y += 32) {
        float d = qmm_half(qmm_u16(s));
        uint32_t qh = qmm_u32(s + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(qmm_q5_lo(s + 6, qh, j) - 16) * d;
            y[j + 16] = (float)(qmm_q5_hi(s + 6, qh, j) - 16) * d;
        }
    }
}

static void p_deq_q5_1(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 24, y += 32) {
        float d = qmm_half(qmm_u16(s)), m = qmm_half(qmm_u16(s + 2));
        uint32_t qh = qmm_u32(s + 4);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)qmm_q5_lo(s + 8, qh, j) * d + m;
            y[j + 16] = (float)qmm_q5_hi(s + 8, qh, j) * d + m;
        }
    }
}

static void p_deq_q8_0(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 34, y += 32) {
        float d = qmm_half(qmm_u16(s));
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)s[2 + j] * d;
    }
}

/// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block, times d and dmin (ggml's get_scale_min_k4).
static inline void qmm_scale_min_k4(int j, const uint8_t *q, float d, float dmin, float *sc, float *mn) {
    int s, m;
    if (j < 4) {
        s = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        s = (q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4;
        m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
    *sc = d * (float)s;
    *mn = dmin * (float)m;
}

static void p_deq_q4_k(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 144, y += 256) {
        float d = qmm_half(qmm_u16(s)), dmin = qmm_half(qmm_u16(s + 2));
        for (int j = 0; j < 4; j++) {
            const uint8_t *q = s + 16 + 32 * j;
            float d1, m1, d2, m2;
            qmm_scale_min_k4(2 * j, s + 4, d, dmin, &d1, &m1);
            qmm_scale_min_k4(2 * j + 1, s + 4, d, dmin, &d2, &m2);
            for (int l = 0; l < 32; l++) y[64 * j + l] = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) y[64 * j + 32 + l] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void p_deq_q5_k(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 176, y += 256) {
        float d = qmm_half(qmm_u16(s)), dmin = qmm_half(qmm_u16(s + 2));
        const uint8_t *qh = s + 16;
        for (int j = 0; j < 4; j++) {
            const uint8_t *q = s + 48 + 32 * j;
            float d1, m1, d2, m2;
            qmm_scale_min_k4(2 * j, s + 4, d, dmin, &d1, &m1);
            qmm_scale_min_k4(2 * j + 1, s + 4, d, dmin, &d2, &m2);
            for (int l = 0; l < 32; l++)
                y[64 * j + l] = d1 * (float)((q[l] & 0xF) | ((qh[l] >> (2 * j)) & 1) << 4) - m1;
            for (int l = 0; l < 32; l++)
                y[64 * j + 32 + l] = d2 * (float)((q[l] >> 4) | ((qh[l] >> (2 * j + 1)) & 1) << 4) - m2;
        }
    }
}

static void p_deq_q6_k(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 210, y += 256) {
        float d = qmm_half(qmm_u16(s + 208));
        for (int n = 0; n < 2; n++) {
            const uint8_t *ql = s + 64 * n, *qh = s + 128 + 32 * n;
            const int8_t *sc = (const int8_t *)(s + 192 + 8 * n);
            float *out = y + 128 * n;
            for (int g = 0; g < 2; g++) {
                float d1 = d * sc[g], d2 = d * sc[g + 2], d3 = d * sc[g + 4], d4 = d * sc[g + 6];
                for (int l = 16 * g; l < 16 * g + 16; l++) {
                    out[l] = d1 * (float)(((ql[l] & 0xF) | (qh[l] & 3) << 4) - 32);
                    out[l + 32] = d2 * (float)(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
                    out[l + 64] = d3 * (float)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                    out[l + 96] = d4 * (float)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
                }
            }
        }
    }
}

// MARK: - Tile products

/// Dequantises `nb` blocks from `src` into `nb`·block-size floats at `dst`.
typedef void (*qmm_deq_fn)(const uint8_t *src, float *dst, long nb);
/// acc[i·QMM_LANES ...] += the lanes of Σp t[p]·x[i·ldx + p], p < len, i < m.
typedef void (*qmm_dot_fn)(const float *t, long len, const float *x, long ldx, long m, float *acc);

static void p_dot(const float *t, long len, const float *x, long ldx, long m, float *acc) {
    for (long i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        float a[QMM_LANES];  // a local copy: no aliasing with t and x, so it stays in vector registers
        memcpy(a, acc + i * QMM_LANES, sizeof a);
        long p = 0;
        for (; p + QMM_LANES <= len; p += QMM_LANES)
            for (int l = 0; l < QMM_LANES; l++) a[l] += t[p + l] * xi[p + l];
        for (int l = 0; p + l < len; l++) a[l] += t[p + l] * xi[p + l];
        memcpy(acc + i * QMM_LANES, a, sizeof a);
    }
}

#ifdef PRUNE_MM_X86
#define T256 __attribute__((target("avx2,fma,f16c")))
#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define QMM_INLINE inline __attribute__((always_inline))
#if defined(__clang__)
#define QMM_UNROLL _Pragma("clang loop unroll(full)")
#else
#define QMM_UNROLL
#endif
/// Keeps the array at p in memory (where the compiler would hold it in registers): broadcasting one of its
/// elements is then a load instead of two shuffles.
#define QMM_IN_MEMORY(p) __asm__ volatile("" : : "r"(p) : "memory")

// MARK: - AVX2 dequantisers

/// Stores 16 signed bytes as floats: y[i] = q[i]·d + m (m = −0 keeps q·d as it is, signed zeros included).
T256 static QMM_INLINE void h_store16(float *y, __m128i q, __m256 d, __m256 m) {
    _mm256_storeu_ps(y, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d, m));
    _mm256_storeu_ps(y + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q))), d, m));
}

T256 static QMM_INLINE __m128i h_lo4(__m128i v) { return _mm_and_si128(v, _mm_set1_epi8(0xF)); }
T256 static QMM_INLINE __m128i h_hi4(__m128i v) { return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0xF)); }
T256 static QMM_INLINE __m128i h_load(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
/// The f16 at p in every lane. (vpbroadcastw + vcvtph2ps: _cvtsh_ss merges into a register's old value, a false
/// dependency on whatever was last computed there.)
T256 static QMM_INLINE __m256 h_half(const uint8_t *p) { return _mm256_cvtph_ps(_mm_set1_epi16((short)qmm_u16(p))); }

/// sm[i] = d·scale_i, sm[8 + i] = −dmin·min_i for the 8 sub-blocks of a Q4_K/Q5_K block (ggml's kmask unpacking
/// of the 12 scale bytes).
T256 static QMM_INLINE void h_scales_k4(const uint8_t *s, float *sm) {
    uint32_t u[4];
    memcpy(u, s + 4, 12);
    u[3] = ((u[2] >> 4) & 0x0F0F0F0F) | ((u[1] >> 6) & 0x03030303) << 4;
    uint32_t mins = u[1] & 0x3F3F3F3F;
    u[1] = (u[2] & 0x0F0F0F0F) | ((u[0] >> 6) & 0x03030303) << 4;
    u[2] = mins;
    u[0] &= 0x3F3F3F3F;
    __m128i b = _mm_loadu_si128((const __m128i *)u);
    __m256 dmin = _mm256_xor_ps(h_half(s + 2), _mm256_set1_ps(-0.0f));
    _mm256_storeu_ps(sm, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), h_half(s)));
    _mm256_storeu_ps(sm + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(b, b))), dmin));
    QMM_IN_MEMORY(sm);
}

/// 0x10 in byte i where bit i of `bits` (16 bits) is set, else 0.
T256 static QMM_INLINE __m128i h_bits16(uint32_t bits) {
    __m128i v = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)bits), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    __m128i bit = _mm_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(v, bit), bit), _mm_set1_epi8(0x10));
}

/// 0x10 in byte i where v[i] has bit `b` set, else 0.
T256 static QMM_INLINE __m128i h_bit(__m128i v, int b) {
    __m128i mask = _mm_set1_epi8((char)(1 << b));
    return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(v, mask), mask), _mm_set1_epi8(0x10));
}

T256 static void h_deq_f16(const uint8_t *s, float *y, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h_load(s + 2 * i)));
    p_deq_f16(s + 2 * i, y + i, count - i);
}

T256 static void h_deq_bf16(const uint8_t *s, float *y, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h_load(s + 2 * i)), 16)));
    p_deq_bf16(s + 2 * i, y + i, count - i);
}

T256 static void h_deq_q4_0(const uint8_t *s, float *y, long nb) {
    __m128i eight = _mm_set1_epi8(8);
    __m256 nz = _mm256_set1_ps(-0.0f);
    for (long b = 0; b < nb; b++, s += 18, y += 32) {
        __m256 d = h_half(s);
        __m128i q = h_load(s + 2);
        h_store16(y, _mm_sub_epi8(h_lo4(q), eight), d, nz);
        h_store16(y + 16, _mm_sub_epi8(h_hi4(q), eight), d, nz);
    }
}

T256 static void h_deq_q4_1(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 20, y += 32) {
        __m256 d = h_half(s), m = h_half(s + 2);
        __m128i q = h_load(s + 4);
        h_store16(y, h_lo4(q), d, m);
        h_store16(y + 16, h_hi4(q), d, m);
    }
}

T256 static void h_deq_q5_0(const uint8_t *s, float *y, long nb) {
    __m128i sixteen = _mm_set1_epi8(16);
    __m256 nz = _mm256_set1_ps(-0.0f);
    for (long b = 0; b < nb; b++, s += 22, y += 32) {
        __m256 d = h_half(s);
        uint32_t qh = qmm_u32(s + 2);
        __m128i q = h_load(s + 6);
        h_store16(y, _mm_sub_epi8(_mm_or_si128(h_lo4(q), h_bits16(qh & 0xFFFF)), sixteen), d, nz);
        h_store16(y + 16, _mm_sub_epi8(_mm_or_si128(h_hi4(q), h_bits16(qh >> 16)), sixteen), d, nz);
    }
}

T256 static void h_deq_q5_1(const uint8_t *s, float *y, long nb) {
    for (long b = 0; b < nb; b++, s += 24, y += 32) {
        __m256 d = h_half(s), m = h_half(s + 2);
        uint32_t qh = qmm_u32(s + 4);
        __m128i q = h_load(s + 8);
        h_store16(y, _mm_or_si128(h_lo4(q), h_bits16(qh & 0xFFFF)), d, m);
        h_store16(y + 16, _mm_or_si128(h_hi4(q), h_bits16(qh >> 16)), d, m);
    }
}

T256 static void h_deq_q8_0(const uint8_t *s, float *y, long nb) {
    __m256 nz = _mm256_set1_ps(-0.0f);
    for (long b = 0; b < nb; b++, s += 34, y += 32) {
        __m256 d = h_half(s);
        h_store16(y, h_load(s + 2), d, nz);
        h_store16(y + 16, h_load(s + 18), d, nz);
    }
}

/// Q4_K and Q5_K (qh not NULL): sub-blocks 2j and 2j+1 from 32 bytes of nibbles q and 32 bytes of high bits qh;
/// sm from h_scales_k4.
T256 static QMM_INLINE void h_deq_k_pair(float *y, const uint8_t *q, const uint8_t *qh, int j, const float *sm) {
    __m256 d1 = _mm256_broadcast_ss(sm + 2 * j), m1 = _mm256_broadcast_ss(sm + 8 + 2 * j);
    __m256 d2 = _mm256_broadcast_ss(sm + 2 * j + 1), m2 = _mm256_broadcast_ss(sm + 9 + 2 * j);
    for (int h = 0; h < 2; h++) {
        __m128i v = h_load(q + 16 * h), lo = h_lo4(v), hi = h_hi4(v);
        if (qh) {
            __m128i hb = h_load(qh + 16 * h);
            lo = _mm_or_si128(lo, h_bit(hb, 2 * j));
            hi = _mm_or_si128(hi, h_bit(hb, 2 * j + 1));
        }
        h_store16(y + 16 * h, lo, d1, m1);
        h_store16(y + 32 + 16 * h, hi, d2, m2);
    }
}

T256 static void h_deq_q4_k(const uint8_t *s, float *y, long nb) {
    _Alignas(32) float sm[16];
    for (long b = 0; b < nb; b++, s += 144, y += 256) {
        h_scales_k4(s, sm);
        for (int j = 0; j < 4; j++) h_deq_k_pair(y + 64 * j, s + 16 + 32 * j, NULL, j, sm);
    }
}

T256 static void h_deq_q5_k(const uint8_t *s, float *y, long nb) {
    _Alignas(32) float sm[16];
    for (long b = 0; b < nb; b++, s += 176, y += 256) {
        h_scales_k4(s, sm);
        for (int j = 0; j < 4; j++) h_deq_k_pair(y + 64 * j, s + 48 + 32 * j, s + 16, j, sm);
    }
}

/// sc[i] = d·scale_i for the 16 sub-blocks of a Q6_K block.
T256 static QMM_INLINE void h_scales_q6_k(const uint8_t *s, float *sc) {
    __m128i b = h_load(s + 192);
    __m256 d = h_half(s + 208);
    _mm256_storeu_ps(sc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), d));
    _mm256_storeu_ps(sc + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b, b))), d));
    QMM_IN_MEMORY(sc);
}

T256 static void h_deq_q6_k(const uint8_t *s, float *y, long nb) {
    __m128i m4 = _mm_set1_epi8(0xF), m2 = _mm_set1_epi8(0x30), k32 = _mm_set1_epi8(32);
    __m256 nz = _mm256_set1_ps(-0.0f);
    _Alignas(32) float scales[16];
    for (long b = 0; b < nb; b++, s += 210, y += 256) {
        h_scales_q6_k(s, scales);
        for (int n = 0; n < 2; n++) {
            const float *sc = scales + 8 * n;
            float *out = y + 128 * n;
            for (int g = 0; g < 2; g++) {
                __m128i a = h_load(s + 64 * n + 16 * g), c = h_load(s + 64 * n + 32 + 16 * g);
                __m128i h = h_load(s + 128 + 32 * n + 16 * g);
                // Bits 4–5 of each quant: qh bits 0–1, 2–3, 4–5, 6–7.
                __m128i h0 = _mm_and_si128(_mm_slli_epi16(h, 4), m2), h1 = _mm_and_si128(_mm_slli_epi16(h, 2), m2);
                __m128i h2 = _mm_and_si128(h, m2), h3 = _mm_and_si128(_mm_srli_epi16(h, 2), m2);
                __m128i q0 = _mm_or_si128(_mm_and_si128(a, m4), h0), q1 = _mm_or_si128(_mm_and_si128(c, m4), h1);
                __m128i q2 = _mm_or_si128(h_hi4(a), h2), q3 = _mm_or_si128(h_hi4(c), h3);
                h_store16(out + 16 * g, _mm_sub_epi8(q0, k32), _mm256_broadcast_ss(sc + g), nz);
                h_store16(out + 32 + 16 * g, _mm_sub_epi8(q1, k32), _mm256_broadcast_ss(sc + g + 2), nz);
                h_store16(out + 64 + 16 * g, _mm_sub_epi8(q2, k32), _mm256_broadcast_ss(sc + g + 4), nz);
                h_store16(out + 96 + 16 * g, _mm_sub_epi8(q3, k32), _mm256_broadcast_ss(sc + g + 6), nz);
            }
        }
    }
}

// MARK: - AVX2 tile product

/// Lanes [0, count) on, count in [0, 8].
T256 static QMM_INLINE __m256i h_mask(long count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// p_dot for G rows with R accumulators each (G·R ≤ 12; constants after inlining).
T256 static QMM_INLINE void h_dot_rows(const float *t, long len, const float *x, long ldx, float *acc, int G, int R) {
    __m256 a[4][4];
    QMM_UNROLL for (int g = 0; g < G; g++) {
        a[g][0] = _mm256_loadu_ps(acc + g * QMM_LANES);
        QMM_UNROLL for (int r = 1; r < R; r++) a[g][r] = _mm256_setzero_ps();
    }
    long p = 0;
    for (; p + 8 * R <= len; p += 8 * R)
        QMM_UNROLL for (int r = 0; r < R; r++) {
            __m256 w = _mm256_load_ps(t + p + 8 * r);
            QMM_UNROLL for (int g = 0; g < G; g++)
                a[g][r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + g * ldx + p + 8 * r), w, a[g][r]);
        }
    for (; p < len; p += 8) {
        __m256i k = h_mask(qmm_min(8, len - p));
        __m256 w = _mm256_maskload_ps(t + p, k);
        QMM_UNROLL for (int g = 0; g < G; g++)
            a[g][0] = _mm256_fmadd_ps(_mm256_maskload_ps(x + g * ldx + p, k), w, a[g][0]);
    }
    QMM_UNROLL for (int g = 0; g < G; g++) {
        QMM_UNROLL for (int r = 1; r < R; r++) a[g][0] = _mm256_add_ps(a[g][0], a[g][r]);
        _mm256_storeu_ps(acc + g * QMM_LANES, a[g][0]);
    }
}

T256 static void h_dot(const float *t, long len, const float *x, long ldx, long m, float *acc) {
    for (long i = 0; i < m; i += 4, x += 4 * ldx, acc += 4 * QMM_LANES) {
        switch (qmm_min(4, m - i)) {
        case 1: h_dot_rows(t, len, x, ldx, acc, 1, 4); break;
        case 2: h_dot_rows(t, len, x, ldx, acc, 2, 4); break;
        case 3: h_dot_rows(t, len, x, ldx, acc, 3, 4); break;
        default: h_dot_rows(t, len, x, ldx, acc, 4, 2); break;
        }
    }
}

// MARK: - AVX-512: dequantised in registers

/// Rows of X per pass over W.
#define Z_ROWS 8

/// Accumulators: a[g][r] for row g of X, r < R rotating over W's vectors (G·R ≥ 4 hides the FMA latency).
typedef __m512 z_acc_t[Z_ROWS][4];

/// a[g][r] += w · x[g·ldx ..< g·ldx + 16] for g < G.
T512 static QMM_INLINE void z_fma(z_acc_t a, int r, __m512 w, const float *x, long ldx, int G) {
    QMM_UNROLL for (int g = 0; g < G; g++) a[g][r] = _mm512_fmadd_ps(_mm512_loadu_ps(x + g * ldx), w, a[g][r]);
}

/// base, base + 1, ..., base + 15.
T512 static QMM_INLINE __m512 z_iota(float base) {
    return _mm512_add_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_ps(base));
}

/// 16 bytes zero-extended to 32-bit lanes (vpermps reads their low 4 bits: the low nibble).
T512 static QMM_INLINE __m512i z_bytes(const uint8_t *p) { return _mm512_cvtepu8_epi32(h_load(p)); }

/// The f16 at p in every lane (see h_half).
T512 static QMM_INLINE __m512 z_half(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_set1_epi16((short)qmm_u16(p))); }

/// 16 signed bytes as floats times d.
T512 static QMM_INLINE __m512 z_i8(__m128i q, __m512 d) { return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d); }

/// Values of the 5-bit quants whose low 4 bits are v's lanes and whose 5th bits are `high`: lo[q] or hi[q].
T512 static QMM_INLINE __m512 z_q5(__m512i v, __mmask16 high, __m512 lo, __m512 hi) {
    return _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(v, lo), high, v, hi);
}

/// Q4_0: a table of (q − 8)·d; the low nibbles are elements 0–15, the high nibbles 16–31.
T512 static QMM_INLINE void z_q4_0(const uint8_t *s, const float *x, long ldx, z_acc_t a, int G, int R) {
    qmm_prefetch(s, 18);
    __m512 t = _mm512_mul_ps(z_iota(-8), z_half(s));
    __m512i v = z_bytes(s + 2);
    z_fma(a, 0, _mm512_permutexvar_ps(v, t), x, ldx, G);
    z_fma(a, 1 % R, _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), t), x + 16, ldx, G);
}

/// Q4_1: a table of q·d + m.
T512 static QMM_INLINE void z_q4_1(const uint8_t *s, const float *x, long ldx, z_acc_t a, int G, int R) {
    qmm_prefetch(s, 20);
    __m512 t = _mm512_fmadd_ps(z_iota(0), z_half(s), z_half(s + 2));
    __m512i v = z_bytes(s + 4);
    z_fma(a, 0, _mm512_permutexvar_ps(v, t), x, ldx, G);
    z_fma(a, 1 % R, _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), t), x + 16, ldx, G);
}

/// The 32 elements of a Q5 block from its qh (u32 of 5th bits) and the 16 bytes of nibbles after
/// it, with `lo`/`hi` the values of q < 16 and q ≥ 16.
T512 static QMM_INLINE void z_q5_block(const uint8_t *qh_at, __m512 lo, __m512 hi, const float *x, long ldx, z_acc_t a,
                                       int G, int R) {
    uint32_t qh = qmm_u32(qh_at);
    __m512i v = z_bytes(qh_at + 4);
    z_fma(a, 0, z_q5(v, (__mmask16)qh, lo, hi), x, ldx, G);
    z_fma(a, 1 % R, z_q5(_mm512_srli_epi32(v, 4), (__mmask16)(qh >> 16), lo, hi), x + 16, ldx, G);
}

/// Q5_0: tables of (q − 16)·d for q < 16 and q ≥ 16; bit e of qh is element e's 5th bit.
T512 static QMM_INLINE void z_q5_0(const uint8_t *s, const float *x, long ldx, z_acc_t a, int G, int R) {
    qmm_prefetch(s, 22);
    __m512 d = z_half(s);
    z_q5_block(s + 2, _mm512_mul_ps(z_iota(-16), d), _mm512_mul_ps(z_iota(0), d), x, ldx, a, G, R);
}

/// Q5_1: as Q5_0 with q·d + m.
T512 static QMM_INLINE void z_q5_1(const uint8_t *s, const float *x, long ldx, z_acc_t a, int G, int R) {
    qmm_prefetch(s, 24);
    __m512 d = z_half(s), m = z_half(s + 2);
    z_q5_block(s + 4, _mm512_fmadd_ps(z_iota(0), d, m), _mm512_fmadd_ps(z_iota(16), d, m), x, ldx, a, G, R);
}

/// Q8_0: q·d.
T512 static QMM_INLINE void z_q8_0(const uint8_t *s, const float *x, long ldx, z_acc_t a, int G, int R) {
    qmm_prefetch(s, 34);
    __m512 d = z_half(s);
    z_fma(a, 0, z_i8(h_load(s + 2), d), x, ldx, G);
    z_fma(a, 1 % R, z_i8(h_load(s + 18), d), x + 16, ldx, G);
}

/// Q4_K and Q5_K (qh not NULL): tables of d·scale·q − dmin·min per sub-block of 32.
T512 static QMM_INLINE void z_k4(const uint8_t *s, const uint8_t *qs, const uint8_t *qh, const float *x, long ldx,
                                 z_acc_t a, int G, int R) {
    qmm_prefetch(s, qh ? 176 : 144);
    _Alignas(64) float sm[16];
    h_scales_k4(s, sm);
    QMM_UNROLL for (int j = 0; j < 4; j++) {
        __m512 d1 = _mm512_set1_ps(sm[2 * j]), m1 = _mm512_set1_ps(sm[8 + 2 * j]);
        __m512 d2 = _mm512_set1_ps(sm[2 * j + 1]), m2 = _mm512_set1_ps(sm[9 + 2 * j]);
        __m512 t1 = _mm512_fmadd_ps(z_iota(0), d1, m1), t2 = _mm512_fmadd_ps(z_iota(0), d2, m2);
        __m512 u1 = _mm512_fmadd_ps(z_iota(16), d1, m1), u2 = _mm512_fmadd_ps(z_iota(16), d2, m2);
        QMM_UNROLL for (int h = 0; h < 2; h++) {
            __m512i v = z_bytes(qs + 32 * j + 16 * h), vh = _mm512_srli_epi32(v, 4);
            __m512 w1, w2;
            if (qh) {
                // Bits 2j and 2j+1 of qh[l] moved to bit 7 of each byte: masks of the 16 lanes.
                __m128i b = h_load(qh + 16 * h);
                w1 = z_q5(v, (__mmask16)_mm_movemask_epi8(_mm_slli_epi16(b, 7 - 2 * j)), t1, u1);
                w2 = z_q5(vh, (__mmask16)_mm_movemask_epi8(_mm_slli_epi16(b, 6 - 2 * j)), t2, u2);
            } else {
                w1 = _mm512_permutexvar_ps(v, t1);
                w2 = _mm512_permutexvar_ps(vh, t2);
            }
            z_fma(a, (4 * j + h) % R, w1, x + 64 * j + 16 * h, ldx, G);
            z_fma(a, (4 * j + 2 + h) % R, w2, x + 64 * j + 32 + 16 * h, ldx, G);
        }
    }
}

/// Q6_K: d·scale·(q − 32), in the element order of h_deq_q6_k.
T512 static QMM_INLINE void z_q6_k(const uint8_t *s, const float *x, long ldx, z_acc_t a, int G, int R) {
    qmm_prefetch(s, 210);
    __m128i m4 = _mm_set1_epi8(0xF), m2 = _mm_set1_epi8(0x30), k32 = _mm_set1_epi8(32);
    _Alignas(64) float sc[16];
    h_scales_q6_k(s, sc);
    QMM_UNROLL for (int n = 0; n < 2; n++) {
        QMM_UNROLL for (int g = 0; g < 2; g++) {
            __m128i l0 = h_load(s + 64 * n + 16 * g), l1 = h_load(s + 64 * n + 32 + 16 * g);
            __m128i h = h_load(s + 128 + 32 * n + 16 * g);
            // Bits 4–5 of each quant: qh bits 0–1, 2–3, 4–5, 6–7.
            __m128i q0 = _mm_or_si128(_mm_and_si128(l0, m4), _mm_and_si128(_mm_slli_epi16(h, 4), m2));
            __m128i q1 = _mm_or_si128(_mm_and_si128(l1, m4), _mm_and_si128(_mm_slli_epi16(h, 2), m2));
            __m128i q2 = _mm_or_si128(h_hi4(l0), _mm_and_si128(h, m2));
            __m128i q3 = _mm_or_si128(h_hi4(l1), _mm_and_si128(_mm_srli_epi16(h, 2), m2));
            const float *xo = x + 128 * n + 16 * g;
            const float *scn = sc + 8 * n + g;
            z_fma(a, (8 * n + g) % R, z_i8(_mm_sub_epi8(q0, k32), _mm512_set1_ps(scn[0])), xo, ldx, G);
            z_fma(a, (8 * n + 2 + g) % R, z_i8(_mm_sub_epi8(q1, k32), _mm512_set1_ps(scn[2])), xo + 32, ldx, G);
            z_fma(a, (8 * n + 4 + g) % R, z_i8(_mm_sub_epi8(q2, k32), _mm512_set1_ps(scn[4])), xo + 64, ldx, G);
            z_fma(a, (8 * n + 6 + g) % R, z_i8(_mm_sub_epi8(q3, k32), _mm512_set1_ps(scn[6])), xo + 96, ldx, G);
        }
    }
}

/// F16 or BF16 (bf16 = 1): k elements, the last k % 16 masked.
T512 static QMM_INLINE void z_halves(const uint8_t *s, int bf16, const float *x, long ldx, long k, z_acc_t a, int G,
                                     int R) {
    for (long p = 0; p < k; p += 16 * R) {
        qmm_prefetch(s + 2 * p, 32 * R);
        QMM_UNROLL for (int r = 0; r < R; r++) {
            long q = p + 16 * r, rest = k - q;
            if (rest <= 0) break;
            __m256i h;
            __mmask16 lanes = 0xFFFF;
            if (rest >= 16) {
                h = _mm256_loadu_si256((const __m256i *)(s + 2 * q));
            } else {
                uint16_t tail[16] = {0};
                memcpy(tail, s + 2 * q, (size_t)rest * 2);
                h = _mm256_loadu_si256((const __m256i *)tail);
                lanes = (__mmask16)((1u << rest) - 1);
            }
            __m512 w = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
            QMM_UNROLL for (int g = 0; g < G; g++)
                a[g][r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes, x + g * ldx + q), w, a[g][r]);
        }
    }
}

/// sums[g] = Σp x[g·k + p]·W_row[p] for g < G (a constant after inlining).
T512 static QMM_INLINE void z_row_g(int type, const uint8_t *w, const float *x, long k, float *sums, int G) {
    const int R = G == 1 ? 4 : G <= 3 ? 2 : 1;
    z_acc_t a;
    QMM_UNROLL for (int g = 0; g < G; g++) QMM_UNROLL for (int r = 0; r < R; r++) a[g][r] = _mm512_setzero_ps();
    switch (type) {
    case QMM_F16: z_halves(w, 0, x, k, k, a, G, R); break;
    case QMM_BF16: z_halves(w, 1, x, k, k, a, G, R); break;
    case QMM_Q4_0: for (long p = 0; p < k; p += 32, w += 18) z_q4_0(w, x + p, k, a, G, R); break;
    case QMM_Q4_1: for (long p = 0; p < k; p += 32, w += 20) z_q4_1(w, x + p, k, a, G, R); break;
    case QMM_Q5_0: for (long p = 0; p < k; p += 32, w += 22) z_q5_0(w, x + p, k, a, G, R); break;
    case QMM_Q5_1: for (long p = 0; p < k; p += 32, w += 24) z_q5_1(w, x + p, k, a, G, R); break;
    case QMM_Q8_0: for (long p = 0; p < k; p += 32, w += 34) z_q8_0(w, x + p, k, a, G, R); break;
    case QMM_Q4_K: for (long p = 0; p < k; p += 256, w += 144) z_k4(w, w + 16, NULL, x + p, k, a, G, R); break;
    case QMM_Q5_K: for (long p = 0; p < k; p += 256, w += 176) z_k4(w, w + 48, w + 16, x + p, k, a, G, R); break;
    case QMM_Q6_K: for (long p = 0; p < k; p += 256, w += 210) z_q6_k(w, x + p, k, a, G, R); break;
    default: break;
    }
    QMM_UNROLL for (int g = 0; g < G; g++) {
        QMM_UNROLL for (int r = 1; r < R; r++) a[g][0] = _mm512_add_ps(a[g][0], a[g][r]);
        sums[g] = _mm512_reduce_add_ps(a[g][0]);
    }
}

/// z_row_g for m ≤ Z_ROWS rows of X.
T512 static void z_row(int type, const uint8_t *w, const float *x, long m, long k, float *sums) {
    switch (m) {
    case 1: z_row_g(type, w, x, k, sums, 1); break;
    case 2: z_row_g(type, w, x, k, sums, 2); break;
    case 3: z_row_g(type, w, x, k, sums, 3); break;
    case 4: z_row_g(type, w, x, k, sums, 4); break;
    case 5: z_row_g(type, w, x, k, sums, 5); break;
    case 6: z_row_g(type, w, x, k, sums, 6); break;
    case 7: z_row_g(type, w, x, k, sums, 7); break;
    default: z_row_g(type, w, x, k, sums, 8); break;
    }
}

#define QMM_DEQ(name) {p_deq_##name, h_deq_##name}
#else
#define QMM_DEQ(name) {p_deq_##name}
#endif

// MARK: - Types, backends, driver

typedef struct {
    int id;              // ggml type id
    long block, bytes;   // elements and bytes per block
    qmm_deq_fn deq[2];   // portable, AVX2
} qmm_type_t;

static const qmm_type_t qmm_types[] = {
    {QMM_F16, 1, 2, QMM_DEQ(f16)},        {QMM_BF16, 1, 2, QMM_DEQ(bf16)},      {QMM_Q4_0, 32, 18, QMM_DEQ(q4_0)},
    {QMM_Q4_1, 32, 20, QMM_DEQ(q4_1)},    {QMM_Q5_0, 32, 22, QMM_DEQ(q5_0)},    {QMM_Q5_1, 32, 24, QMM_DEQ(q5_1)},
    {QMM_Q8_0, 32, 34, QMM_DEQ(q8_0)},    {QMM_Q4_K, 256, 144, QMM_DEQ(q4_k)},  {QMM_Q5_K, 256, 176, QMM_DEQ(q5_k)},
    {QMM_Q6_K, 256, 210, QMM_DEQ(q6_k)},
};

static const qmm_type_t *qmm_type(int id) {
    for (size_t i = 0; i < sizeof qmm_types / sizeof qmm_types[0]; i++)
        if (qmm_types[i].id == id) return &qmm_types[i];
    return NULL;
}

/// The QMM_* backend that `backend` (a PRUNE_MM_*) resolves to: the x86 ones need AVX2, FMA and F16C.
static int qmm_backend(int backend) {
#ifdef PRUNE_MM_X86
    int f = prune_cpu_features();
    if (!(f & 1) || !(f & 4)) return QMM_PORTABLE;
    if (backend >= PRUNE_MM_AVX512 && (f & 2)) return QMM_AVX512;
    if (backend >= PRUNE_MM_AVX2) return QMM_AVX2;
#else
    (void)backend;
#endif
    return QMM_PORTABLE;
}

int prune_qmm_supports(int type) { return qmm_type(type) != NULL; }

const char *prune_qmm_backend_name(int backend) {
    static const char *const names[] = {"portable", "avx2", "avx512"};
    return names[qmm_backend(backend)];
}

/// sums[i] = Σp x[i·k + p]·W_row[p] for i < m ≤ QMM_ROWS, through the tile.
static void qmm_row_tiled(const qmm_type_t *t, qmm_deq_fn deq, qmm_dot_fn dot, const uint8_t *w, const float *x,
                          long m, long k, float *sums) {
    _Alignas(64) float tile[QMM_TILE];
    _Alignas(64) float acc[QMM_ROWS * QMM_LANES];
    memset(acc, 0, (size_t)m * QMM_LANES * sizeof(float));
    for (long p = 0; p < k; p += QMM_TILE) {
        long len = qmm_min(QMM_TILE, k - p);
        const uint8_t *wp = w + p / t->block * t->bytes;
        qmm_prefetch(wp, len / t->block * t->bytes);
        deq(wp, tile, len / t->block);
        dot(tile, len, x + p, k, m, acc);
    }
    for (long i = 0; i < m; i++) {
        float s = 0;
        for (int l = 0; l < QMM_LANES; l++) s += acc[i * QMM_LANES + l];
        sums[i] = s;
    }
}

/// sums[i] = Σp x[i·k + p]·W_row[p] for i < m ≤ the backend's rows per pass.
static void qmm_row(const qmm_type_t *t, int be, const uint8_t *w, const float *x, long m, long k, float *sums) {
#ifdef PRUNE_MM_X86
    if (be == QMM_AVX512) {
        z_row(t->id, w, x, m, k, sums);
        return;
    }
    if (be == QMM_AVX2) {
        qmm_row_tiled(t, t->deq[1], h_dot, w, x, m, k, sums);
        return;
    }
#endif
    (void)be;
    qmm_row_tiled(t, t->deq[0], p_dot, w, x, m, k, sums);
}

void prune_qmm_xwt(int backend, int part, int nparts, float *y, const float *x, const void *w, long row_bytes,
                   int type, long m, long n, long k, int acc) {
    const qmm_type_t *t = qmm_type(type);
    if (!t || k % t->block != 0) return;
    int be = qmm_backend(backend);
    long group = QMM_ROWS;
#ifdef PRUNE_MM_X86
    if (be == QMM_AVX512) group = Z_ROWS;
#endif
    // This part's output rows [j0, j1), split in units of 16 (a cache line of y).
    long units = (n + 15) / 16;
    long j0 = qmm_min(units * part / nparts * 16, n), j1 = qmm_min(units * (part + 1) / nparts * 16, n);
    float sums[QMM_ROWS];
    for (long i0 = 0; i0 < m; i0 += group) {
        long rows = qmm_min(group, m - i0);
        for (long j = j0; j < j1; j++) {
            qmm_row(t, be, (const uint8_t *)w + j * row_bytes, x + i0 * k, rows, k, sums);
            for (long i = 0; i < rows; i++) {
                float *yp = y + (i0 + i) * n + j;
                *yp = acc ? *yp + sums[i] : sums[i];
            }
        }
    }
}
