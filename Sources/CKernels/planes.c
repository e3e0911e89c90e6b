#include "kernels.h"

// The byte-plane filters of the shuffle codecs (Collectives/Codec.swift), in C so that they
// are vectorised (AVX2 where the CPU has it, chosen at run time; SSE2 otherwise) while the
// Swift code is built for the x86-64 baseline. Bit for bit what the Swift loops they replaced
// computed: the same bits moved, the same single float addition when adding.

#pragma clang fp contract(off)

static inline __attribute__((always_inline)) uint32_t rotl1(uint32_t b) { return (b << 1) | (b >> 31); }

// float -> bfloat16, round to nearest even; a NaN stays a (quiet) NaN.
static inline __attribute__((always_inline)) uint16_t to_bf16(uint32_t bits) {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x40);
    uint32_t rounding = ((bits >> 16) & 1) + 0x7FFF;
    return (uint16_t)((bits + rounding) >> 16);
}

static inline __attribute__((always_inline))
void split4_body(const uint32_t *restrict src, size_t n, uint8_t *restrict d0, uint8_t *restrict d1,
                 uint8_t *restrict d2, uint8_t *restrict d3) {
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rotl1(src[i]);
        d0[i] = (uint8_t)r; d1[i] = (uint8_t)(r >> 8); d2[i] = (uint8_t)(r >> 16); d3[i] = (uint8_t)(r >> 24);
    }
}

static inline __attribute__((always_inline))
void join4_body(const uint8_t *restrict b0, const uint8_t *restrict b1, const uint8_t *restrict b2,
                const uint8_t *restrict b3, size_t n, float *restrict dst, int add) {
    if (add) {
        for (size_t i = 0; i < n; i++) {
            uint32_t r = (uint32_t)b0[i] | (uint32_t)b1[i] << 8 | (uint32_t)b2[i] << 16 | (uint32_t)b3[i] << 24;
            uint32_t bits = (r >> 1) | (r << 31);
            float v; __builtin_memcpy(&v, &bits, 4);
            dst[i] += v;
        }
    } else {
        uint32_t *out = (uint32_t *)dst;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = (uint32_t)b0[i] | (uint32_t)b1[i] << 8 | (uint32_t)b2[i] << 16 | (uint32_t)b3[i] << 24;
            out[i] = (r >> 1) | (r << 31);
        }
    }
}

static inline __attribute__((always_inline))
void split2_body(const uint32_t *restrict src, size_t n, uint8_t *restrict lo, uint8_t *restrict hi) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h = to_bf16(src[i]);
        uint16_t r = (uint16_t)((h << 1) | (h >> 15));
        lo[i] = (uint8_t)r; hi[i] = (uint8_t)(r >> 8);
    }
}

static inline __attribute__((always_inline))
void join2_body(const uint8_t *restrict lo, const uint8_t *restrict hi, size_t n, float *restrict dst, int add) {
    if (add) {
        for (size_t i = 0; i < n; i++) {
            uint16_t r = (uint16_t)(lo[i] | hi[i] << 8);
            uint32_t bits = (uint32_t)(uint16_t)((r >> 1) | (r << 15)) << 16;
            float v; __builtin_memcpy(&v, &bits, 4);
            dst[i] += v;
        }
    } else {
        uint32_t *out = (uint32_t *)dst;
        for (size_t i = 0; i < n; i++) {
            uint16_t r = (uint16_t)(lo[i] | hi[i] << 8);
            out[i] = (uint32_t)(uint16_t)((r >> 1) | (r << 15)) << 16;
        }
    }
}

#if defined(__x86_64__)
#include "cpu.h"

#define VARIANTS(name, params, args)                                                   \
    __attribute__((target("avx2"))) static void name##_avx2 params { name##_body args; } \
    static void name##_base params { name##_body args; }

VARIANTS(split4, (const uint32_t *src, size_t n, uint8_t *d0, uint8_t *d1, uint8_t *d2, uint8_t *d3), (src, n, d0, d1, d2, d3))
VARIANTS(join4, (const uint8_t *b0, const uint8_t *b1, const uint8_t *b2, const uint8_t *b3, size_t n, float *dst, int add), (b0, b1, b2, b3, n, dst, add))
VARIANTS(split2, (const uint32_t *src, size_t n, uint8_t *lo, uint8_t *hi), (src, n, lo, hi))
VARIANTS(join2, (const uint8_t *lo, const uint8_t *hi, size_t n, float *dst, int add), (lo, hi, n, dst, add))

static int planes_variant = -1;   // 0 baseline (SSE2), 1 avx2
static inline int planes_choose(void) {
    int v = __atomic_load_n(&planes_variant, __ATOMIC_RELAXED);
    if (v < 0) { v = rg_cpu_has_avx2(); __atomic_store_n(&planes_variant, v, __ATOMIC_RELAXED); }
    return v;
}
#define DISPATCH(name, args) do { if (planes_choose()) name##_avx2 args; else name##_base args; } while (0)

int rg_planes_select(int avx2) {
    if (avx2 && !rg_cpu_has_avx2()) return 0;
    __atomic_store_n(&planes_variant, avx2 ? 1 : 0, __ATOMIC_RELAXED);
    return 1;
}

#else
#define DISPATCH(name, args) name##_body args
int rg_planes_select(int avx2) { return avx2 ? 0 : 1; }
#endif

void rg_split_planes4(const float *src, size_t n, uint8_t *d0, uint8_t *d1, uint8_t *d2, uint8_t *d3) {
    DISPATCH(split4, ((const uint32_t *)src, n, d0, d1, d2, d3));
}

void rg_join_planes4(const uint8_t *b0, const uint8_t *b1, const uint8_t *b2, const uint8_t *b3, size_t n, float *dst, int add) {
    DISPATCH(join4, (b0, b1, b2, b3, n, dst, add));
}

void rg_split_planes_bf16(const float *src, size_t n, uint8_t *lo, uint8_t *hi) {
    DISPATCH(split2, ((const uint32_t *)src, n, lo, hi));
}

void rg_join_planes_bf16(const uint8_t *lo, const uint8_t *hi, size_t n, float *dst, int add) {
    DISPATCH(join2, (lo, hi, n, dst, add));
}
