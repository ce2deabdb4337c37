// See exact_sums.h.
#include "exact_sums.h"
#include "clones.h"
#include "exact_term.h"

/// values[i] += term(i) over count values: the four planes written as four restrict streams so the loop vectorizes.
#define ADD_TERMS(count, term)                                                                        \
    do {                                                                                              \
        int64_t *restrict p0 = limbs, *restrict p1 = limbs + stride;                                  \
        int64_t *restrict p2 = limbs + 2 * stride, *restrict p3 = limbs + 3 * stride;                 \
        int64_t out_of_range = 0;                                                                     \
        for (size_t i = 0; i < (count); i++) {                                                        \
            int64_t limb[4];                                                                          \
            distrain_exact_limbs((term), limb, &out_of_range);                                        \
            p0[i] += limb[0]; p1[i] += limb[1]; p2[i] += limb[2]; p3[i] += limb[3];                   \
        }                                                                                             \
        *overflow += out_of_range;                                                                    \
    } while (0)

DISTRAIN_CLONES
void distrain_exact_add_floats(int64_t *limbs, size_t stride, const float *x, size_t count, int64_t *overflow) {
    ADD_TERMS(count, (double)x[i]);
}

DISTRAIN_CLONES
void distrain_exact_add_doubles(int64_t *limbs, size_t stride, const double *x, size_t count, int64_t *overflow) {
    ADD_TERMS(count, x[i]);
}

DISTRAIN_CLONES
void distrain_exact_add_outer(int64_t *limbs, size_t stride, const float *a, size_t rows, const float *b,
                              size_t columns, int64_t *overflow) {
    int64_t *const first = limbs;
    // A zero row (a ReLU's gradient) is skipped: its terms are ±0 — except 0·Inf and 0·NaN, which are NaN and
    // counted as a GEMM's would make them NaN.
    size_t not_finite = 0;
    for (size_t i = 0; i < columns; i++) not_finite += !isfinite(b[i]);
    for (size_t r = 0; r < rows; r++) {
        const double ar = a[r];
        if (ar == 0) {
            *overflow += (int64_t)not_finite;
            continue;
        }
        limbs = first + r * columns;
        ADD_TERMS(columns, ar * (double)b[i]);
    }
}

/// The carries moved up, so l0..l2 lie in [0, 2^32) and the value is exactly the integer
/// l3·2^96 + l2·2^64 + l1·2^32 + l0 (in units of 2^-80). Returns l3.
static inline int64_t normalize(const int64_t *limbs, size_t stride, int64_t *l0, int64_t *l1, int64_t *l2) {
    int64_t a = limbs[0], b = limbs[stride], c = limbs[2 * stride], d = limbs[3 * stride];
    b += a >> 32; a &= 0xFFFFFFFFll;
    c += b >> 32; b &= 0xFFFFFFFFll;
    d += c >> 32; c &= 0xFFFFFFFFll;
    *l0 = a; *l1 = b; *l2 = c;
    return d;
}

/// Below 2^125 units the value is one __int128, which the compiler's runtime rounds correctly; beyond (sums of
/// 2^45 and more) a chain of double operations — still the same bits for the same integer.
static inline __int128 whole(int64_t high, int64_t l2, int64_t l1, int64_t l0) {
    return (__int128)high * ((__int128)1 << 96) + ((__int128)l2 << 64) + ((__int128)l1 << 32) + l0;
}

static const int64_t whole_limit = (int64_t)1 << 29;

void distrain_exact_round_floats(const int64_t *limbs, size_t stride, float *out, size_t count) {
    for (size_t i = 0; i < count; i++) {
        int64_t l0, l1, l2;
        const int64_t high = normalize(limbs + i, stride, &l0, &l1, &l2);
        if (high > -whole_limit && high < whole_limit) {
            out[i] = (float)whole(high, l2, l1, l0) * 0x1p-80f;
        } else {
            out[i] = (float)((double)high * 0x1p16 + (double)l2 * 0x1p-16 + (double)l1 * 0x1p-48);
        }
    }
}

void distrain_exact_round_doubles(const int64_t *limbs, size_t stride, double *out, size_t count) {
    for (size_t i = 0; i < count; i++) {
        int64_t l0, l1, l2;
        const int64_t high = normalize(limbs + i, stride, &l0, &l1, &l2);
        if (high > -whole_limit && high < whole_limit) {
            out[i] = (double)whole(high, l2, l1, l0) * 0x1p-80;
        } else {
            out[i] = (double)high * 0x1p16 + (double)l2 * 0x1p-16 + (double)l1 * 0x1p-48;
        }
    }
}
