#include "kernels.h"

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
#include "cpu.h"

// One body per loop, instantiated for AVX (8 lanes) and SSE2 (4 lanes): V is the vector type,
// W its lane count, P the intrinsic prefix (_mm256 or _mm).
#define SET1(P, x) P##_set1_ps(x)
#define ADAM_BODY(V, W, P)                                                                        \
    const V vc1 = SET1(P, c1), vb2 = SET1(P, b2), vc2 = SET1(P, c2);                               \
    const V veps = SET1(P, eps), vwd = SET1(P, wd), vstep = SET1(P, step), vbc = SET1(P, bc);      \
    size_t i = 0;                                                                                 \
    for (; i + W <= n; i += W) {                                                                  \
        V gi = P##_loadu_ps(g + i);                                                               \
        V pi = P##_loadu_ps(p + i);                                                               \
        if (wd != 0) gi = P##_add_ps(gi, P##_mul_ps(vwd, pi));                                    \
        V mi = P##_loadu_ps(m + i), vi = P##_loadu_ps(v + i);                                     \
        mi = P##_add_ps(mi, P##_mul_ps(P##_sub_ps(gi, mi), vc1));                                 \
        vi = P##_add_ps(P##_mul_ps(vi, vb2), P##_mul_ps(P##_mul_ps(vc2, gi), gi));                \
        V denom = P##_add_ps(P##_div_ps(P##_sqrt_ps(vi), vbc), veps);                             \
        P##_storeu_ps(m + i, mi);                                                                 \
        P##_storeu_ps(v + i, vi);                                                                 \
        P##_storeu_ps(p + i, P##_sub_ps(pi, P##_mul_ps(vstep, P##_div_ps(mi, denom))));          \
    }                                                                                             \
    for (; i < n; i++) adam_one(p, g, m, v, i, c1, b2, c2, eps, wd, step, bc);

#define RMSPROP_BODY(V, W, P)                                                                     \
    const V va = SET1(P, a), vc = SET1(P, c), veps = SET1(P, eps), vlr = SET1(P, lr);              \
    size_t i = 0;                                                                                 \
    for (; i + W <= n; i += W) {                                                                  \
        V gi = P##_loadu_ps(g + i);                                                               \
        V si = P##_add_ps(P##_mul_ps(P##_loadu_ps(s + i), va), P##_mul_ps(P##_mul_ps(vc, gi), gi)); \
        P##_storeu_ps(s + i, si);                                                                 \
        V q = P##_div_ps(gi, P##_add_ps(P##_sqrt_ps(si), veps));                                  \
        P##_storeu_ps(p + i, P##_sub_ps(P##_loadu_ps(p + i), P##_mul_ps(vlr, q)));                \
    }                                                                                             \
    for (; i < n; i++) rmsprop_one(p, g, s, i, a, c, eps, lr);

__attribute__((target("avx")))
static void adam_avx(float *p, const float *g, float *m, float *v, size_t n,
                     float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    ADAM_BODY(__m256, 8, _mm256)
}

static void adam_sse2(float *p, const float *g, float *m, float *v, size_t n,
                      float c1, float b2, float c2, float eps, float wd, float step, float bc) {
    ADAM_BODY(__m128, 4, _mm)
}

__attribute__((target("avx")))
static void rmsprop_avx(float *p, const float *g, float *s, size_t n, float a, float c, float eps, float lr) {
    RMSPROP_BODY(__m256, 8, _mm256)
}

static void rmsprop_sse2(float *p, const float *g, float *s, size_t n, float a, float c, float eps, float lr) {
    RMSPROP_BODY(__m128, 4, _mm)
}

static int variant = -1;   // 0 sse2, 1 avx
static inline int choose(void) {
    int v = __atomic_load_n(&variant, __ATOMIC_RELAXED);
    if (v < 0) { v = rg_cpu_has_avx(); __atomic_store_n(&variant, v, __ATOMIC_RELAXED); }
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
    if (avx && !rg_cpu_has_avx()) return 0;
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
