#ifndef HISP_ALLOCATOR_TUNING_H
#define HISP_ALLOCATOR_TUNING_H

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

/// Keeps blocks up to `mmap_threshold` bytes in the heap and lets up to
/// `trim_threshold` bytes of free heap stay mapped (glibc mallopt). Returns 1
/// when applied, 0 where the C library has no such knobs.
static inline int hisp_tune_allocator(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
#endif
}

/// Gives free heap memory of every arena back to the system (glibc malloc_trim).
/// Returns 1 when memory was released, 0 otherwise or where there is no such call.
static inline int hisp_release_free_memory(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

#endif
