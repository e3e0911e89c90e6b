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

void ringgan_checksum_use_hardware(int on) { hw = on ? has_sse42() : 0; }

uint32_t ringgan_crc32c(uint32_t crc, const void *data, size_t n) {
#if defined(__x86_64__)
    if (ringgan_crc32c_hardware()) return crc32c_hw(crc, (const unsigned char *)data, n);
#endif
    return crc32c_sw(crc, (const unsigned char *)data, n);
}

// MARK: frame checksum

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t three_streams_hw(const unsigned char *p, size_t third, uint32_t *b_out, uint32_t *c_out) {
    uint64_t a = ~0ull, b = ~1ull, c = ~2ull;   // distinct seeds
    const unsigned char *q = p + third, *r = p + 2 * third;
    for (size_t i = 0; i < third; i += 8) {
        uint64_t x, y, z;
        memcpy(&x, p + i, 8); memcpy(&y, q + i, 8); memcpy(&z, r + i, 8);
        a = __builtin_ia32_crc32di(a, x);
        b = __builtin_ia32_crc32di(b, y);
        c = __builtin_ia32_crc32di(c, z);
    }
    *b_out = (uint32_t)b; *c_out = (uint32_t)c;
    return (uint32_t)a;
}
#endif

static inline uint32_t rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

uint32_t ringgan_frame_checksum(const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
#if defined(__x86_64__)
    if (n >= 3 * 64 && ringgan_crc32c_hardware()) {
        // Three CRC-32C streams over the three thirds, interleaved so the instruction's latency
        // is hidden, and the tail; any error in one third changes that stream's CRC.
        size_t third = (n / 3) & ~(size_t)7;
        uint32_t b, c;
        uint32_t a = three_streams_hw(p, third, &b, &c);
        uint32_t t = ringgan_crc32c((uint32_t)n, p + 3 * third, n - 3 * third);
        return a ^ rotl32(b, 8) ^ rotl32(c, 16) ^ rotl32(t, 24);
    }
#endif
    if (n >= 3 * 64) {
        // The same value without the instruction.
        size_t third = (n / 3) & ~(size_t)7;
        // crc32c_sw inverts on the way in and out; the streams start from raw registers
        // 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD and are not inverted at the end.
        uint32_t a = ~crc32c_sw(0, p, third);
        uint32_t b = ~crc32c_sw(1, p + third, third);
        uint32_t c = ~crc32c_sw(2, p + 2 * third, third);
        uint32_t t = ringgan_crc32c((uint32_t)n, p + 3 * third, n - 3 * third);
        return a ^ rotl32(b, 8) ^ rotl32(c, 16) ^ rotl32(t, 24);
    }
    return ringgan_crc32c(0, p, n);
}
