#include "pages.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  /* Linux 5.14; older kernels answer EINVAL */
#endif

void distrain_zero_release(float *values, size_t begin, size_t end) {
    if (end <= begin) return;
    static uintptr_t page = 0;
    if (page == 0) page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)(values + begin), stop = (uintptr_t)(values + end);
    uintptr_t first_whole = (start + page - 1) / page * page, last_whole = stop / page * page;
    if (first_whole >= last_whole) {
        memset((void *)start, 0, stop - start);
        return;
    }
    memset((void *)start, 0, first_whole - start);
    memset((void *)last_whole, 0, stop - last_whole);
    if (madvise((void *)first_whole, last_whole - first_whole, MADV_DONTNEED) != 0) {
        memset((void *)first_whole, 0, last_whole - first_whole);
    }
}

void distrain_zero_release_outside(float *values, size_t begin, size_t end, size_t kept_begin, size_t kept_end) {
    size_t below_end = kept_begin < end ? kept_begin : end;
    size_t above_begin = kept_end > begin ? kept_end : begin;
    if (kept_end <= kept_begin) below_end = above_begin = end;  // nothing kept: all of it goes
    distrain_zero_release(values, begin, below_end);
    distrain_zero_release(values, above_begin, end);
}

static const size_t huge_page = (size_t)2 << 20;

float *distrain_map_zeroed(size_t bytes) {
    size_t length = (bytes + huge_page - 1) / huge_page * huge_page;
    if (length == 0) length = huge_page;
    // Over-map by one huge page, then trim the head and tail so the mapping starts on a 2 MiB boundary.
    uint8_t *raw = mmap(NULL, length + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t aligned = ((uintptr_t)raw + huge_page - 1) / huge_page * huge_page;
    size_t head = aligned - (uintptr_t)raw;
    if (head > 0) munmap(raw, head);
    munmap((void *)(aligned + length), huge_page - head);
    madvise((void *)aligned, length, MADV_HUGEPAGE);  // advice only: without THP, ordinary pages
    return (float *)aligned;
}

void distrain_unmap(float *values, size_t bytes) {
    size_t length = (bytes + huge_page - 1) / huge_page * huge_page;
    munmap(values, length == 0 ? huge_page : length);
}

void distrain_prefault(float *values, size_t begin, size_t end) {
    if (end <= begin) return;
    static uintptr_t page = 0;
    if (page == 0) page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)(values + begin) / page * page, stop = (uintptr_t)(values + end);
    stop = (stop + page - 1) / page * page;
    (void)madvise((void *)start, stop - start, MADV_POPULATE_WRITE);  // advice: a refusal leaves ordinary faults
}
