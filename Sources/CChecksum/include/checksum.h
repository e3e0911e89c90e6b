#ifndef RINGGAN_CHECKSUM_H
#define RINGGAN_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `n` bytes, continuing from `crc` (0 to start). Uses the SSE4.2 crc32
/// instruction where the CPU has it (about 8 GB/s), a table otherwise; both give the same value.
uint32_t ringgan_crc32c(uint32_t crc, const void *data, size_t n);

/// 1 when the hardware path is in use.
int ringgan_crc32c_hardware(void);

/// Turns the hardware path off (0) or back on where the CPU has it (1); for tests.
void ringgan_checksum_use_hardware(int on);

/// RingGAN's frame checksum: CRC-32C of each third of the payload (three streams run
/// interleaved, which hides the crc32 instruction's latency: about 3x the speed of one CRC), and
/// of the tail, combined by rotation and xor; an error anywhere changes the value. Payloads under
/// 192 bytes use plain CRC-32C. Same value with or without SSE4.2.
uint32_t ringgan_frame_checksum(const void *data, size_t n);

#endif
