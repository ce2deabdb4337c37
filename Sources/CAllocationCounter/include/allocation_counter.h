#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by this
/// process since it started outside BLAS calls — distrain's own code, the Swift runtime, Foundation —
/// when the counter is linked into the executable; 0 otherwise.
uint64_t distrain_allocation_count(void);

/// Heap allocations made inside BLAS calls (by the library itself) since the process started.
uint64_t distrain_blas_allocation_count(void);

/// Heap allocations made inside the step's MPI reductions (by Open MPI) since the process started.
uint64_t distrain_mpi_allocation_count(void);

/// 1 when malloc is interposed (the counter is live), else 0.
int distrain_allocation_counter_active(void);

#endif
