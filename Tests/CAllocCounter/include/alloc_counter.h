#ifndef RINGGAN_ALLOC_COUNTER_H
#define RINGGAN_ALLOC_COUNTER_H
#include <stddef.h>

/// Heap allocations made by the calling thread since the last reset (malloc, calloc, realloc,
/// posix_memalign, aligned_alloc, memalign), counted only while counting is on.
void ringgan_alloc_count_start(void);
long ringgan_alloc_count_stop(void);
/// Allocations of at least `bytes` made by any thread since the last call (always counted).
long ringgan_large_allocs_since_reset(size_t bytes);
void ringgan_large_allocs_reset(size_t bytes);

#endif
