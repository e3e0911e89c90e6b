#ifndef RINGGAN_CPU_H
#define RINGGAN_CPU_H
// What the CPU and the OS allow, for the kernels that choose their variant at run time
// (x86-64 only).
#include <cpuid.h>

// AVX: the CPU flag and the OS saving the YMM registers (OSXSAVE, XCR0 bits 1 and 2).
static inline int rg_cpu_has_avx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_AVX) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;
}

// AVX2: AVX as above and the AVX2 flag (leaf 7).
static inline int rg_cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!rg_cpu_has_avx()) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}

#endif
