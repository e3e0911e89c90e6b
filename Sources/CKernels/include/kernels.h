#ifndef RINGGAN_KERNELS_H
#define RINGGAN_KERNELS_H
#include <stddef.h>

// The optimizers' update loops over a flat parameter buffer, in C so that they can use the
// CPU's widest vector unit (AVX, chosen at run time) while the Swift code is built for the
// x86-64 baseline. Each computes exactly what the Swift formula it replaced did, operation by
// operation and in the same order, with no fused multiply-adds: results are bit for bit equal.

/// torch.optim.Adam on p[0..<n] (exp_avg m, exp_avg_sq v), one step:
///   g' = g + wd * p (wd != 0);  m += (g' - m) * one_minus_b1;  v = v * b2 + (one_minus_b2 * g') * g'
///   p -= step_size * (m / (sqrt(v) / bc2_sqrt + eps))
void rg_adam_step(float *p, const float *g, float *m, float *v, size_t n,
                  float one_minus_b1, float b2, float one_minus_b2, float eps, float wd,
                  float step_size, float bc2_sqrt);

/// torch.optim.RMSprop (no momentum, not centred) on p[0..<n], square average s, one step:
///   s = s * alpha + (one_minus_alpha * g) * g;  p -= lr * (g / (sqrt(s) + eps))
void rg_rmsprop_step(float *p, const float *g, float *s, size_t n,
                     float alpha, float one_minus_alpha, float eps, float lr);

/// Which variant the two loops above run: "avx", "sse2" or "scalar".
const char *rg_kernels_variant(void);

/// For tests: run the SSE2 loops (avx = 0) or the AVX ones again where the CPU has them (avx = 1).
/// Returns 0 where the asked variant cannot run here.
int rg_kernels_select(int avx);

#endif
