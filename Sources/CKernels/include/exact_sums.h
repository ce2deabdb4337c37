// Sums whose bits do not depend on the order of their terms (Tensors/ExactSums.swift): every term is
// turned into a fixed-point integer — 2^-80 resolution, below 2^40 in magnitude — held as four 32-bit
// limbs in int64 lanes, and integer addition is associative. So a gradient summed sample by sample on
// one rank and the same samples summed on three ranks and then over the ranks give the same integer, and
// the same float once rounded. Terms at or above 2^40 (and Inf, NaN) are not added but counted.
//
// Values are stored in planes: limb k of value i at limbs[k·stride + i] (a plane per limb, so the loops
// vectorize); `limbs` points at the first value a call touches and `stride` is the values per plane.
#ifndef DISTRAIN_EXACT_SUMS_H
#define DISTRAIN_EXACT_SUMS_H
#include <stddef.h>
#include <stdint.h>

/// Limbs per value: value = (l0 + l1·2^32 + l2·2^64 + l3·2^96) · 2^-80.
#define DISTRAIN_EXACT_LIMBS 4

/// values[i] += x[i] (count floats); terms out of range add one each to *overflow.
void distrain_exact_add_floats(int64_t *limbs, size_t stride, const float *x, size_t count, int64_t *overflow);

/// values[i] += x[i] in double: bits below 2^-80 are dropped (toward zero), the same whatever the order.
void distrain_exact_add_doubles(int64_t *limbs, size_t stride, const double *x, size_t count, int64_t *overflow);

/// values[i·columns + j] += a[i]·b[j], each product exact in double (a Linear layer's weight gradient for one
/// sample: dy ⊗ x).
void distrain_exact_add_outer(int64_t *limbs, size_t stride, const float *a, size_t rows, const float *b,
                              size_t columns, int64_t *overflow);

/// out[i] = values[i] (count of them), rounded to float once (to nearest).
void distrain_exact_round_floats(const int64_t *limbs, size_t stride, float *out, size_t count);

/// out[i] = values[i], rounded to double once (to nearest).
void distrain_exact_round_doubles(const int64_t *limbs, size_t stride, double *out, size_t count);

#endif
