#include "kernels.h"
#include <math.h>

// Vector code must round exactly as the scalar formula: no contraction into FMA anywhere.
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

// The scalar formula (tails, and machines without SSE2/AVX). sqrt is IEEE (correctly rounded)
// in every variant, as are + - * /.
static inline void adam_one(float *p, const float *g, float *m, float *v, size_t i,
                            float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    float gi = g[i];
    if (wd != 0) gi += wd * p[i];
    m[i] += (gi - m[i]) * c1;
    v[i] = v[i] * b2 + c2 * gi * gi;
    float denom = __builtin_sqrtf(v[i]) / bc + eps;
    p[i] -= step * (m[i] / denom);
}

static inline void rmsprop_one(float *p, const float *g, float *s, size_t i, float a, float c, float eps, float lr) {
    s[i] = s[i] * a + c * g[i] * g[i];
    p[i] -= lr * (g[i] / (__builtin_sqrtf(s[i]) + eps));
}

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>

__attribute__((target("avx")))
static void adam_avx(float *p, const float *g, float *m, float *v, size_t n,
                     float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    const __m256 vc1 = _mm256_set1_ps(c1), vb2 = _mm256_set1_ps(b2), vc2 = _mm256_set1_ps(c2);
    const __m256 veps = _mm256_set1_ps(eps), vwd = _mm256_set1_ps(wd), vstep = _mm256_set1_ps(step);
    const __m256 vbc = _mm256_set1_ps(bc);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 pi = _mm256_loadu_ps(p + i);
        if (wd != 0) gi = _mm256_add_ps(gi, _mm256_mul_ps(vwd, pi));
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(_mm256_sub_ps(gi, mi), vc1));
        vi = _mm256_add_ps(_mm256_mul_ps(vi, vb2), _mm256_mul_ps(_mm256_mul_ps(vc2, gi), gi));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc), veps);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(vstep, _mm256_div_ps(mi, denom))));
    }
    for (; i < n; i++) adam_one(p, g, m, v, i, c1, b2, c2, eps, wd, step, bc);
}

__attribute__((target("avx")))
static void rmsprop_avx(float *p, const float *g, float *s, size_t n, float a, float c, float eps, float lr) {
    const __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c), veps = _mm256_set1_ps(eps), vlr = _mm256_set1_ps(lr);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 si = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(s + i), va), _mm256_mul_ps(_mm256_mul_ps(vc, gi), gi));
        _mm256_storeu_ps(s + i, si);
        __m256 q = _mm256_div_ps(gi, _mm256_add_ps(_mm256_sqrt_ps(si), veps));
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_loadu_ps(p + i), _mm256_mul_ps(vlr, q)));
    }
    for (; i < n; i++) rmsprop_one(p, g, s, i, a, c, eps, lr);
}

static void adam_sse2(float *p, const float *g, float *m, float *v, size_t n,
                      float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    const __m128 vc1 = _mm_set1_ps(c1), vb2 = _mm_set1_ps(b2), vc2 = _mm_set1_ps(c2);
    const __m128 veps = _mm_set1_ps(eps), vwd = _mm_set1_ps(wd), vstep = _mm_set1_ps(step);
    const __m128 vbc = _mm_set1_ps(bc);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m128 gi = _mm_loadu_ps(g + i);
        __m128 pi = _mm_loadu_ps(p + i);
        if (wd != 0) gi = _mm_add_ps(gi, _mm_mul_ps(vwd, pi));
        __m128 mi = _mm_loadu_ps(m + i), vi = _mm_loadu_ps(v + i);
        mi = _mm_add_ps(mi, _mm_mul_ps(_mm_sub_ps(gi, mi), vc1));
        vi = _mm_add_ps(_mm_mul_ps(vi, vb2), _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
        __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), vbc), veps);
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(p + i, _mm_sub_ps(pi, _mm_mul_ps(vstep, _mm_div_ps(mi, denom))));
    }
    for (; i < n; i++) adam_one(p, g, m, v, i, c1, b2, c2, eps, wd, step, bc);
}

static void rmsprop_sse2(float *p, const float *g, float *s, size_t n, float a, float c, float eps, float lr) {
    const __m128 va = _mm_set1_ps(a), vc = _mm_set1_ps(c), veps = _mm_set1_ps(eps), vlr = _mm_set1_ps(lr);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m128 gi = _mm_loadu_ps(g + i);
        __m128 si = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(s + i), va), _mm_mul_ps(_mm_mul_ps(vc, gi), gi));
        _mm_storeu_ps(s + i, si);
        __m128 q = _mm_div_ps(gi, _mm_add_ps(_mm_sqrt_ps(si), veps));
        _mm_storeu_ps(p + i, _mm_sub_ps(_mm_loadu_ps(p + i), _mm_mul_ps(vlr, q)));
    }
    for (; i < n; i++) rmsprop_one(p, g, s, i, a, c, eps, lr);
}

// AVX needs the CPU flag and the OS saving the YMM registers (OSXSAVE, XCR0 bits 1 and 2).
static int has_avx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_AVX) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;
}

static int variant = -1;   // 0 sse2, 1 avx
static inline int choose(void) {
    int v = __atomic_load_n(&variant, __ATOMIC_RELAXED);
    if (v < 0) { v = has_avx(); __atomic_store_n(&variant, v, __ATOMIC_RELAXED); }
    return v;
}

void rg_adam_step(float *p, const float *g, float *m, float *v, size_t n,
                  float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    if (choose()) adam_avx(p, g, m, v, n, c1, b2, c2, eps, wd, step, bc);
    else adam_sse2(p, g, m, v, n, c1, b2, c2, eps, wd, step, bc);
}

void rg_rmsprop_step(float *p, const float *g, float *s, size_t n, float a, float c, float eps, float lr) {
    if (choose()) rmsprop_avx(p, g, s, n, a, c, eps, lr);
    else rmsprop_sse2(p, g, s, n, a, c, eps, lr);
}

const char *rg_kernels_variant(void) { return choose() ? "avx" : "sse2"; }

int rg_kernels_select(int avx) {
    if (avx && !has_avx()) return 0;
    __atomic_store_n(&variant, avx ? 1 : 0, __ATOMIC_RELAXED);
    return 1;
}

#else

void rg_adam_step(float *p, const float *g, float *m, float *v, size_t n,
                  float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    for (size_t i = 0; i < n; i++) adam_one(p, g, m, v, i, c1, b2, c2, eps, wd, step, bc);
}

void rg_rmsprop_step(float *p, const float *g, float *s, size_t n, float a, float c, float eps, float lr) {
    for (size_t i = 0; i < n; i++) rmsprop_one(p, g, s, i, a, c, eps, lr);
}

const char *rg_kernels_variant(void) { return "scalar"; }

int rg_kernels_select(int avx) { (void)avx; return 0; }

#endif
