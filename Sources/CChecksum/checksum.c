#include "checksum.h"
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) { uint64_t a; memcpy(&a, p, 8); c = __builtin_ia32_crc32di(c, a); p += 8; n -= 8; }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

static int has_sse42(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_2) != 0;
}
#else
static int has_sse42(void) { return 0; }
#endif

static uint32_t table[256];
static int table_ready = 0;

static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    table_ready = 1;
}

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t n) {
    if (!table_ready) make_table();
    uint32_t c = ~crc;
    while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

static int hw = -1;

int ringgan_crc32c_hardware(void) {
    if (hw < 0) hw = has_sse42();
    return hw;
}

uint32_t ringgan_crc32c(uint32_t crc, const void *data, size_t n) {
#if defined(__x86_64__)
    if (ringgan_crc32c_hardware()) return crc32c_hw(crc, (const unsigned char *)data, n);
#endif
    return crc32c_sw(crc, (const unsigned char *)data, n);
}

// MARK: frame checksum

#define LANES 8

static inline void fletcher_blocks(const unsigned char *p, size_t blocks, uint64_t *a, uint64_t *b) {
    for (size_t k = 0; k < blocks; k++) {
        uint32_t w[LANES];
        memcpy(w, p + k * 4 * LANES, 4 * LANES);
        for (int j = 0; j < LANES; j++) { a[j] += w[j]; b[j] += a[j]; }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void fletcher_blocks_avx2(const unsigned char *p, size_t blocks, uint64_t *a, uint64_t *b) {
    fletcher_blocks(p, blocks, a, b);   // the same code, compiled for AVX2 (vectorised)
}

static int has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}
#endif

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int avx2 = -1;

uint32_t ringgan_frame_checksum(const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t a[LANES] = {0}, b[LANES] = {0};
    size_t blocks = n / (4 * LANES);
#if defined(__x86_64__)
    if (avx2 < 0) avx2 = has_avx2();
    if (avx2) fletcher_blocks_avx2(p, blocks, a, b); else fletcher_blocks(p, blocks, a, b);
#else
    fletcher_blocks(p, blocks, a, b);
#endif
    size_t rest = n - blocks * 4 * LANES;
    if (rest) {
        unsigned char tail[4 * LANES] = {0};
        memcpy(tail, p + blocks * 4 * LANES, rest);
        fletcher_blocks(tail, 1, a, b);
    }
    uint64_t h = mix64((uint64_t)n + 0x9E3779B97F4A7C15ull);
    for (int j = 0; j < LANES; j++) h = mix64(h ^ a[j]) + mix64(h ^ b[j] ^ (0x632BE59BD9B4E019ull * (j + 1)));
    return (uint32_t)(h ^ (h >> 32));
}
