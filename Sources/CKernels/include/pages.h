#pragma once

#include <stddef.h>

// Sets values[begin, end) to zero and gives every memory page wholly inside it back to the operating system: the
// bytes of the (at most two) pages the range shares with its neighbours are zeroed in place. For private anonymous
// memory only (MADV_DONTNEED: a released page reads as zeros and costs no memory until written again; memory shared
// with another process would keep its pages). Where the kernel refuses, the pages are zeroed in place instead
// (still correct, still resident).
void distrain_zero_release(float *values, size_t begin, size_t end);

// distrain_zero_release on the parts of [begin, end) outside [kept_begin, kept_end) (a rank's own slice, which stays).
void distrain_zero_release_outside(float *values, size_t begin, size_t end, size_t kept_begin, size_t kept_end);

// Faults in every page of values[begin, end) for writing in one call (MADV_POPULATE_WRITE), before a pass writes
// them: one page-table walk instead of a fault per page, and no read of the shared zero page first (a read before the
// first write maps the huge zero page, and the write then faults a second time). Advice only: older kernels ignore it.
void distrain_prefault(float *values, size_t begin, size_t end);

// `bytes` of zeroed memory on fresh private pages that cost nothing until written, aligned to 2 MiB and marked for
// transparent huge pages (MADV_HUGEPAGE): a page fault then zeroes 2 MiB at once instead of 4 KiB, which is what makes
// giving pages back and faulting them in again every step affordable (`--shard gradients|parameters`). NULL when the
// kernel refuses the mapping. Release with distrain_unmap and the same `bytes`.
float *distrain_map_zeroed(size_t bytes);
void distrain_unmap(float *values, size_t bytes);
