// Fixed-point accumulation for exact, order-independent sums (RingGAN's exact mode).
//
// A float x times a power of two 2^s is exact in double; adding 2^52 + 2^51 then rounds it to
// the nearest integer (ties to even) as long as |x 2^s| < 2^51, and leaves that integer in the
// low bits of the double's pattern. The caller picks s from the largest |x| so that the bound
// holds (`ExactSum` in NN). Integer addition is associative, so the sums do not depend on the
// order in which contributions arrive.
#include "kernels.h"
#include <string.h>

void rg_fixed_accumulate(const float *x, int64_t *acc, size_t n, double scale) {
    const double magic = 6755399441055744.0;   // 2^52 + 2^51
    const int64_t magicBits = 0x4338000000000000LL;
    for (size_t i = 0; i < n; i++) {
        double v = (double)x[i] * scale + magic;
        int64_t b;
        memcpy(&b, &v, sizeof b);
        acc[i] += b - magicBits;
    }
}

void rg_fixed_to_float(const int64_t *acc, float *out, size_t n, double inverseScale) {
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)acc[i] * inverseScale);
}

float rg_max_abs(const float *x, size_t n) {
    // NaN propagates: a NaN anywhere gives NaN (the caller reports non-finite gradients).
    float m = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a != a) nan = 1;
        m = a > m ? a : m;
    }
    return nan ? __builtin_nanf("") : m;
}

float rg_copy_max_abs(const float *x, float *dst, size_t n) {
    float m = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        dst[i] = v;
        float a = v < 0 ? -v : v;
        if (a != a) nan = 1;
        m = a > m ? a : m;
    }
    return nan ? __builtin_nanf("") : m;
}

void rg_fixed_accumulate_terms(const float *const *terms, size_t count, size_t offset, int64_t *acc, size_t n,
                               double scale) {
    // A block of the accumulator stays in cache while every term is added into it.
    const size_t block = 2048;
    for (size_t lo = 0; lo < n; lo += block) {
        size_t m = n - lo < block ? n - lo : block;
        for (size_t t = 0; t < count; t++) rg_fixed_accumulate(terms[t] + offset + lo, acc + lo, m, scale);
    }
}
