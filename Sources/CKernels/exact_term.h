// Private to CKernels: adding terms to values of exact_sums.h, inlined into the kernels that produce the terms
// (exact_sums.c, batch_norm.c). Written without branches on the data so the compiler vectorizes the loops
// (variable 64-bit shifts and blends: AVX2 and AVX-512 clones).
#ifndef DISTRAIN_EXACT_TERM_H
#define DISTRAIN_EXACT_TERM_H
#include <stdint.h>
#include <string.h>
#include "exact_sums.h"

#define DISTRAIN_INLINE static inline __attribute__((always_inline))

/// The four limbs (each < 2^32 in magnitude, signed like x) of x as a fixed-point integer of 2^-80 units, truncated
/// toward zero (so the same term always gives the same integer); zero for |x| < 2^-80, and zero with *overflow
/// counting one for |x| ≥ 2^40, Inf and NaN.
DISTRAIN_INLINE void distrain_exact_limbs(double x, int64_t limb[4], int64_t *overflow) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int64_t exponent = (int64_t)((bits >> 52) & 0x7FF);
    const int64_t shift = exponent - 995;                                  // |x|·2^80 = mantissa·2^shift
    const int64_t out_of_range = exponent >= 1023 + 40;                    // ≥ 2^40, Inf or NaN
    *overflow += out_of_range;
    // Zero and subnormal doubles (far below 2^-80) and out-of-range terms add nothing.
    const uint64_t mantissa = (exponent == 0) | out_of_range ? 0 : (bits & 0xFFFFFFFFFFFFFull) | (1ull << 52);
    // |x|·2^80 = high·2^64 + low, below 2^120: shifts of 64 and more, or negative ones, are selected away.
    const uint64_t low = shift >= 0 ? (shift < 64 ? mantissa << (shift & 63) : 0)
                                    : (shift > -64 ? mantissa >> ((-shift) & 63) : 0);
    const uint64_t high = shift >= 64 ? mantissa << ((shift - 64) & 63) : (shift > 0 ? mantissa >> ((64 - shift) & 63) : 0);
    const int64_t negative = -(int64_t)(bits >> 63);                       // 0 or -1: (v ^ negative) - negative negates
    limb[0] = ((int64_t)(low & 0xFFFFFFFFull) ^ negative) - negative;
    limb[1] = ((int64_t)(low >> 32) ^ negative) - negative;
    limb[2] = ((int64_t)(high & 0xFFFFFFFFull) ^ negative) - negative;
    limb[3] = ((int64_t)(high >> 32) ^ negative) - negative;
}

/// Value `limbs` (its limb k at limbs[k·stride]) += x. Each limb gets less than 2^32 per term, so an int64 lane
/// takes 2^31 terms before it could overflow.
DISTRAIN_INLINE void distrain_exact_add_term(int64_t *limbs, size_t stride, double x, int64_t *overflow) {
    int64_t limb[4];
    distrain_exact_limbs(x, limb, overflow);
    for (int k = 0; k < DISTRAIN_EXACT_LIMBS; k++) limbs[k * stride] += limb[k];
}

#endif
