// Private to CKernels: how a kernel is compiled for several x86-64 levels in one binary, and small
// helpers the kernel files inline into each of those versions.
#ifndef DISTRAIN_CLONES_H
#define DISTRAIN_CLONES_H
#include <stddef.h>

// target_clones compiles the function for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline,
// and picks one at load time (ifunc), so one binary runs on any x86-64 and uses the wide units where they
// exist. The architecture levels matter: a bare "avx2" clone has no FMA, and every a*b+c then costs a
// multiply and an add (measured: the direct convolution ran at half speed).
#if defined(__x86_64__) && defined(__clang__)
#define DISTRAIN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISTRAIN_CLONES
#endif

/// Σ x[i] over 16 independent lanes, so the compiler vectorizes it (a single running float sum is one
/// long dependency chain it may not reorder). Always inlined, so each clone gets its own wide version.
static inline __attribute__((always_inline)) float distrain_lane_sum(const float *x, size_t n) {
    float lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int l = 0; l < 16; l++) lanes[l] += x[i + l];
    }
    float total = 0;
    for (; i < n; i++) total += x[i];
    for (int l = 0; l < 16; l++) total += lanes[l];
    return total;
}

#endif
