// The convolutions' column matrices (Tensors' Conv.swift): im2col and col2im for images
// n0..<n0+nc of a batch, through padded, phase-split copies of one channel's image planes.
//
// For a stride s the padded plane's columns are split into s phases (phase r holds the columns
// X with X % s == r, in order), so that the input columns an output row reads for kernel column
// j, X = s * ox + j, are contiguous: phase j % s from offset j / s. Every row segment of the
// column matrix is then one contiguous copy (im2col) or add (col2im) of wo floats, where a
// strided loop of a few floats per row was. The planes of one channel for all nc images are
// built first (a few KB, in L1), so that the column matrix is still written (read) one row
// after the other, a single sequential stream.
#include <string.h>
#include "kernels.h"

typedef struct {
    long hp, lw, sw;   // padded rows, floats per phase, phases
    long size;         // floats per image plane
} plane_shape;

static plane_shape shape_of(const rg_conv_geometry *g) {
    plane_shape s;
    long wp = (g->wo - 1) * g->sw + g->kw;
    s.hp = (g->ho - 1) * g->sh + g->kh;
    s.sw = g->sw;
    s.lw = (wp + g->sw - 1) / g->sw;
    s.size = s.hp * s.sw * s.lw;
    return s;
}

static inline float *phase_row(float *q, plane_shape s, long yp, long r) { return q + (yp * s.sw + r) * s.lw; }

// Short rows (4 to 32 floats, mostly), copied and added with SSE. Left alone, the compiler
// turns a copy loop (even one of SSE loads and stores) into a call to memcpy per row, which
// costs more than the copy; the empty asm keeps it a loop.
#if defined(__x86_64__)
#include <immintrin.h>
static inline void copy_row(float *restrict to, const float *restrict from, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 a = _mm_loadu_ps(from + i), b = _mm_loadu_ps(from + i + 4);
        __asm__("" : "+x"(a), "+x"(b));   // keeps the loop a loop (not a call to memcpy)
        _mm_storeu_ps(to + i, a);
        _mm_storeu_ps(to + i + 4, b);
    }
    for (; i + 4 <= n; i += 4) {
        __m128 a = _mm_loadu_ps(from + i);
        __asm__("" : "+x"(a));
        _mm_storeu_ps(to + i, a);
    }
    for (; i < n; i++) to[i] = from[i];
}
static inline void add_row(float *restrict to, const float *restrict from, long n) {
    long i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(to + i, _mm_add_ps(_mm_loadu_ps(to + i), _mm_loadu_ps(from + i)));
    for (; i < n; i++) to[i] += from[i];
}
#else
static inline void copy_row(float *restrict to, const float *restrict from, long n) {
    for (long i = 0; i < n; i++) to[i] = from[i];
}
static inline void add_row(float *restrict to, const float *restrict from, long n) {
    for (long i = 0; i < n; i++) to[i] += from[i];
}
#endif

// d[k] = src[k * step] for k < count; `avail` floats may be read from src.
static inline void gather(float *restrict d, const float *restrict src, long count, long step, long avail) {
    long k = 0;
    if (step == 1) {
        memcpy(d, src, sizeof(float) * (size_t)count);
        return;
    }
#if defined(__x86_64__)
    if (step == 2) {
        for (; k + 4 <= count && 2 * k + 8 <= avail; k += 4) {
            __m128 a = _mm_loadu_ps(src + 2 * k), b = _mm_loadu_ps(src + 2 * k + 4);
            _mm_storeu_ps(d + k, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
        }
    }
#endif
    for (; k < count; k++) d[k] = src[k * step];
}

// The phases' floats k in [lo, hi) that come from image columns 0..<w (the rest is padding).
static inline void valid_range(const rg_conv_geometry *g, long lw, long r, long *lo, long *hi) {
    long sw = g->sw, first = g->pw - r;                    // k * sw >= pw - r
    *lo = first <= 0 ? 0 : (first + sw - 1) / sw;
    long last = g->w - 1 + g->pw - r;                      // k * sw <= w - 1 + pw - r
    *hi = last < 0 ? 0 : last / sw + 1;
    if (*hi > lw) *hi = lw;
    if (*lo > *hi) *lo = *hi;
}

long rg_conv_plane_floats(const rg_conv_geometry *g, long nc) { return nc * shape_of(g).size; }

void rg_im2col(const float *x, const rg_conv_geometry *g, long n0, long nc, float *cols, float *q) {
    const plane_shape s = shape_of(g);
    const long p = g->ho * g->wo, ld = nc * p, wo = g->wo;
    long lo[s.sw], hi[s.sw];
    for (long r = 0; r < s.sw; r++) valid_range(g, s.lw, r, &lo[r], &hi[r]);
    for (long c = 0; c < g->cin; c++) {
        // Channel c of every image: padded (zeros where the kernel reads padding), phase-split.
        for (long b = 0; b < nc; b++) {
            const float *src = x + ((n0 + b) * g->cin + c) * g->h * g->w;
            float *qb = q + b * s.size;
            for (long yp = 0; yp < s.hp; yp++) {
                long iy = yp - g->ph;
                for (long r = 0; r < s.sw; r++) {
                    float *d = phase_row(qb, s, yp, r);
                    if (iy < 0 || iy >= g->h) { memset(d, 0, sizeof(float) * (size_t)s.lw); continue; }
                    const long from = lo[r] * s.sw + r - g->pw;
                    for (long k = 0; k < lo[r]; k++) d[k] = 0;
                    gather(d + lo[r], src + iy * g->w + from, hi[r] - lo[r], s.sw, g->w - from);
                    for (long k = hi[r]; k < s.lw; k++) d[k] = 0;
                }
            }
        }
        // Rows (c, i, j) of the column matrix, each written from start to end.
        for (long i = 0; i < g->kh; i++) {
            for (long j = 0; j < g->kw; j++) {
                float *dst = cols + ((c * g->kh + i) * g->kw + j) * ld;
                const long r = j % s.sw, off = j / s.sw;
                for (long b = 0; b < nc; b++) {
                    float *qb = q + b * s.size;
                    for (long oy = 0; oy < g->ho; oy++, dst += wo) copy_row(dst, phase_row(qb, s, oy * g->sh + i, r) + off, wo);
                }
            }
        }
    }
}

void rg_col2im(const float *cols, const rg_conv_geometry *g, long n0, long nc, float *dx, float *q) {
    const plane_shape s = shape_of(g);
    const long p = g->ho * g->wo, ld = nc * p, wo = g->wo;
    const size_t qn = (size_t)(nc * s.size);
    long lo[s.sw], hi[s.sw];
    for (long r = 0; r < s.sw; r++) valid_range(g, s.lw, r, &lo[r], &hi[r]);
    for (long c = 0; c < g->cin; c++) {
        memset(q, 0, sizeof(float) * qn);
        // Each image position's terms are added in the order (i, j, oy), as the strided loop
        // did, into planes that start at zero: the same sums, bit for bit. The column matrix
        // is read one row after the other.
        for (long i = 0; i < g->kh; i++) {
            for (long j = 0; j < g->kw; j++) {
                const float *src = cols + ((c * g->kh + i) * g->kw + j) * ld;
                const long r = j % s.sw, off = j / s.sw;
                for (long b = 0; b < nc; b++) {
                    float *qb = q + b * s.size;
                    for (long oy = 0; oy < g->ho; oy++, src += wo) add_row(phase_row(qb, s, oy * g->sh + i, r) + off, src, wo);
                }
            }
        }
        // Back into the images (padding dropped); dx was zeroed by the caller.
        for (long b = 0; b < nc; b++) {
            float *qb = q + b * s.size;
            float *out = dx + ((n0 + b) * g->cin + c) * g->h * g->w;
            for (long iy = 0; iy < g->h; iy++) {
                long yp = iy + g->ph;
                if (yp >= s.hp) break;
                float *row = out + iy * g->w;
                for (long r = 0; r < s.sw; r++) {
                    const float *from = phase_row(qb, s, yp, r);
                    float *to = row + lo[r] * s.sw + r - g->pw;
                    for (long k = lo[r]; k < hi[r]; k++, to += s.sw) *to += from[k];
                }
            }
        }
    }
}
