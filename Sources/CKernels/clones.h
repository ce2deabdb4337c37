// Private to CKernels: how a kernel is compiled for several x86-64 levels in one binary, and small
// helpers the kernel files inline into each of those versions.
#ifndef DISTRAIN_CLONES_H
#define DISTRAIN_CLONES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

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

/// e^x for finite x, clamped to [−87, 88] (results stay normal and finite); relative error ~2 ulp.
/// Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact product), a degree-6
/// polynomial for e^r, and 2^n built from its exponent bits.
static inline __attribute__((always_inline)) float exp_clamped(float x) {
    x = fminf(fmaxf(x, -87.0f), 88.0f);
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
