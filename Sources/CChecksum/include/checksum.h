#ifndef RINGGAN_CHECKSUM_H
#define RINGGAN_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `n` bytes, continuing from `crc` (0 to start). Uses the SSE4.2 crc32
/// instruction where the CPU has it (about 8 GB/s), a table otherwise; both give the same value.
uint32_t ringgan_crc32c(uint32_t crc, const void *data, size_t n);

/// 1 when the hardware path is in use.
int ringgan_crc32c_hardware(void);

/// RingGAN's frame checksum: a Fletcher-style sum over eight 32-bit lanes (each lane keeps a
/// running sum `a` and a sum of sums `b`, 64-bit), finished with a 64-bit mix of the lanes and
/// the length. Any single-bit error changes `a`; reordered words change `b`. Vectorises (AVX2
/// where the CPU has it) to well above memory bandwidth; the value does not depend on the path.
uint32_t ringgan_frame_checksum(const void *data, size_t n);

#endif
