// Counts heap allocations for the tests' "no allocation in the steady state" checks, by
// defining malloc and friends in the test executable: the dynamic linker binds every library's
// calls to these, and they forward to glibc's own entry points (__libc_malloc, ...).
#include "alloc_counter.h"
#include <errno.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread int counting __attribute__((tls_model("initial-exec")));
static __thread long count __attribute__((tls_model("initial-exec")));
static _Atomic size_t large_threshold = (size_t)-1;
static _Atomic long large_count;

static inline void note(size_t n) {
    if (counting) count++;
    if (n >= atomic_load_explicit(&large_threshold, memory_order_relaxed))
        atomic_fetch_add_explicit(&large_count, 1, memory_order_relaxed);
}

void *malloc(size_t n) { note(n); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note(a * b); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note(n); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t align, size_t n) { note(n); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { note(n); return __libc_memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    note(n);
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void ringgan_alloc_count_start(void) { count = 0; counting = 1; }
long ringgan_alloc_count_stop(void) { counting = 0; return count; }
void ringgan_large_allocs_reset(size_t bytes) {
    atomic_store(&large_count, 0);
    atomic_store(&large_threshold, bytes);
}
long ringgan_large_allocs_since_reset(size_t bytes) { (void)bytes; return atomic_load(&large_count); }
