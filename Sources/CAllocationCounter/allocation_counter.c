// Counts heap allocations by interposing the C allocator: the executable's malloc & co. take precedence
// over libc's for the whole process (Swift runtime, Foundation, OpenBLAS) and forward to glibc's
// internal entry points. One relaxed atomic increment per call; used by `distrain bench`.
//
// Each allocation is attributed to distrain's own code or to the BLAS library, by whether the calling
// thread is inside a GEMM or MPI call (marked by their wrappers): the step must make no
// allocation of its own, while OpenBLAS's AVX-512 small-matrix kernels malloc on every call.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include "allocation_counter.h"
#include "library_scope.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static uint64_t allocations = 0;
static uint64_t blas_allocations = 0;
static uint64_t mpi_allocations = 0;
static int active = 0;

static inline void count(void) {
    int library = distrain_inside_library();
    uint64_t *counter = library == DISTRAIN_LIBRARY_BLAS ? &blas_allocations : library == DISTRAIN_LIBRARY_MPI ? &mpi_allocations : &allocations;
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    active = 1;
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t count_, size_t size) { count(); return __libc_calloc(count_, size); }
void *realloc(void *pointer, size_t size) { count(); return __libc_realloc(pointer, size); }
void free(void *pointer) { __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return ENOMEM;
    *out = pointer;
    return 0;
}

uint64_t distrain_allocation_count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }
uint64_t distrain_mpi_allocation_count(void) { return __atomic_load_n(&mpi_allocations, __ATOMIC_RELAXED); }
uint64_t distrain_blas_allocation_count(void) { return __atomic_load_n(&blas_allocations, __ATOMIC_RELAXED); }
int distrain_allocation_counter_active(void) { return active; }
