#ifndef RINGGAN_KERNELS_H
#define RINGGAN_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC: the one clock RingGAN measures durations and deadlines with
   (Collectives' `monotonic()`, Telemetry's progress line). */
static inline double rg_monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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

/// The shuffle codecs' byte planes (Collectives' SegmentCoder): each float's bits rotated left
/// by one (the exponent alone in the top byte), byte j of value i to plane j.
void rg_split_planes4(const float *src, size_t n, uint8_t *d0, uint8_t *d1, uint8_t *d2, uint8_t *d3);

/// The inverse: stores the n floats into dst, or adds them into it (add != 0).
void rg_join_planes4(const uint8_t *b0, const uint8_t *b1, const uint8_t *b2, const uint8_t *b3,
                     size_t n, float *dst, int add);

/// The same for bfloat16 (round to nearest even, NaN kept a NaN), its 16 bits rotated left by one:
/// low byte to lo, high byte (the exponent) to hi.
void rg_split_planes_bf16(const float *src, size_t n, uint8_t *lo, uint8_t *hi);
void rg_join_planes_bf16(const uint8_t *lo, const uint8_t *hi, size_t n, float *dst, int add);

/// For tests: the baseline plane loops (avx2 = 0) or the AVX2 ones where the CPU has them
/// (avx2 = 1). Returns 0 where the asked variant cannot run here.
int rg_planes_select(int avx2);

/// A convolution's sizes in its forward orientation (Tensors' ConvGeometry): images of cin x h x w,
/// a kh x kw kernel with strides sh, sw and paddings ph, pw, giving ho x wo outputs.
typedef struct { long cin, h, w, kh, kw, sh, sw, ph, pw, ho, wo; } rg_conv_geometry;

/// Floats of scratch `rg_im2col` and `rg_col2im` need for nc images (one channel's padded,
/// phase-split planes).
long rg_conv_plane_floats(const rg_conv_geometry *g, long nc);

/// Columns of images n0..<n0+nc of x [n, cin, h, w] into cols [cin * kh * kw, nc * ho * wo];
/// `scratch` holds rg_conv_plane_floats(g, nc) floats.
void rg_im2col(const float *x, const rg_conv_geometry *g, long n0, long nc, float *cols, float *scratch);

/// The adjoint: adds cols [cin * kh * kw, nc * ho * wo] into images n0..<n0+nc of dx, which the
/// caller zeroed (each position's terms summed in the order of the kernel rows, kernel columns,
/// output rows); `scratch` as for rg_im2col.
void rg_col2im(const float *cols, const rg_conv_geometry *g, long n0, long nc, float *dx, float *scratch);

// Exact mode's fixed-point sums (fixedpoint.c).
/// acc[i] += round(x[i] * scale) (ties to even); exact while |x[i] * scale| < 2^51 and scale is
/// a power of two.
void rg_fixed_accumulate(const float *x, int64_t *acc, size_t n, double scale);
/// out[i] = (float)((double)acc[i] * inverseScale).
void rg_fixed_to_float(const int64_t *acc, float *out, size_t n, double inverseScale);
/// The largest |x[i]| (0 for n = 0), NaN if any x[i] is NaN.
float rg_max_abs(const float *x, size_t n);
/// dst[i] = x[i], returning the largest |x[i]| as rg_max_abs does.
float rg_copy_max_abs(const float *x, float *dst, size_t n);
/// rg_fixed_accumulate of terms[t][offset ..< offset + n] into acc[0 ..< n] for every term, block by
/// block (the sums are the same as term by term: integer addition).
void rg_fixed_accumulate_terms(const float *const *terms, size_t count, size_t offset, int64_t *acc, size_t n,
                               double scale);

#endif
