#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by this
/// process since it started, when the counter is linked into the executable; 0 otherwise.
uint64_t distrain_allocation_count(void);

/// 1 when malloc is interposed (the counter is live), else 0.
int distrain_allocation_counter_active(void);

#endif
