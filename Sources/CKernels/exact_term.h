// Private to CKernels: adding one term to a value of exact_sums.h, inlined into the kernels that produce
// the terms (exact_sums.c, batch_norm.c).
#ifndef DISTRAIN_EXACT_TERM_H
#define DISTRAIN_EXACT_TERM_H
#include <stdint.h>
#include <string.h>
#include "exact_sums.h"

/// limbs[0..3] += x as a fixed-point integer of 2^-80 units, truncated toward zero (so the same term always
/// adds the same integer); |x| ≥ 2^40, Inf and NaN add 1 to *overflow instead. Each limb gets less than
/// 2^32 per term, so an int64 lane takes 2^31 terms before it could overflow.
static inline __attribute__((always_inline)) void distrain_exact_add_term(int64_t *limbs, double x, int64_t *overflow) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int exponent = (int)((bits >> 52) & 0x7FF);
    if (exponent == 0) return;                                   // zero, or a subnormal double: far below 2^-80
    if (exponent >= 1023 + 40) { *overflow += 1; return; }       // ≥ 2^40, Inf or NaN
    const int shift = exponent - 1075 + 80;                      // |x|·2^80 = mantissa·2^shift
    if (shift <= -53) return;
    const uint64_t mantissa = (bits & 0xFFFFFFFFFFFFFull) | (1ull << 52);
    const unsigned __int128 t = shift < 0 ? (unsigned __int128)(mantissa >> -shift)
                                          : (unsigned __int128)mantissa << shift;  // < 2^120
    const int64_t negative = -(int64_t)(bits >> 63);             // 0 or -1: (v ^ negative) - negative negates
    limbs[0] += ((int64_t)(uint32_t)t ^ negative) - negative;
    limbs[1] += ((int64_t)(uint32_t)(t >> 32) ^ negative) - negative;
    limbs[2] += ((int64_t)(uint32_t)(t >> 64) ^ negative) - negative;
    limbs[3] += ((int64_t)(t >> 96) ^ negative) - negative;
}

#endif
