// See exact_sums.h.
#include "exact_sums.h"
#include "exact_term.h"

void distrain_exact_add_floats(int64_t *limbs, const float *x, size_t count, int64_t *overflow) {
    int64_t out_of_range = 0;
    for (size_t i = 0; i < count; i++) distrain_exact_add_term(limbs + DISTRAIN_EXACT_LIMBS * i, x[i], &out_of_range);
    *overflow += out_of_range;
}

void distrain_exact_add_doubles(int64_t *limbs, const double *x, size_t count, int64_t *overflow) {
    int64_t out_of_range = 0;
    for (size_t i = 0; i < count; i++) distrain_exact_add_term(limbs + DISTRAIN_EXACT_LIMBS * i, x[i], &out_of_range);
    *overflow += out_of_range;
}

void distrain_exact_add_outer(int64_t *limbs, const float *a, size_t rows, const float *b, size_t columns,
                              int64_t *overflow) {
    int64_t out_of_range = 0;
    for (size_t i = 0; i < rows; i++) {
        const double ai = a[i];
        if (ai == 0) continue;  // a ReLU's zero gradient row adds nothing (0·x is ±0, below the window)
        int64_t *row = limbs + DISTRAIN_EXACT_LIMBS * i * columns;
        for (size_t j = 0; j < columns; j++) distrain_exact_add_term(row + DISTRAIN_EXACT_LIMBS * j, ai * b[j], &out_of_range);
    }
    *overflow += out_of_range;
}

/// The carries moved up, so l0..l2 lie in [0, 2^32) and the value is exactly the integer
/// l3·2^96 + l2·2^64 + l1·2^32 + l0 (in units of 2^-80). Returns l3.
static inline int64_t normalize(const int64_t *limbs, int64_t *l0, int64_t *l1, int64_t *l2) {
    int64_t a = limbs[0], b = limbs[1], c = limbs[2], d = limbs[3];
    b += a >> 32; a &= 0xFFFFFFFFll;
    c += b >> 32; b &= 0xFFFFFFFFll;
    d += c >> 32; c &= 0xFFFFFFFFll;
    *l0 = a; *l1 = b; *l2 = c;
    return d;
}

/// Below 2^126 units the value is one __int128, which the compiler's runtime rounds correctly; beyond
/// (sums of 2^46 and more) a chain of double operations — still the same bits for the same integer.
static inline __int128 whole(int64_t high, int64_t l2, int64_t l1, int64_t l0) {
    return (__int128)high * ((__int128)1 << 96) + ((__int128)l2 << 64) + ((__int128)l1 << 32) + l0;
}

static const int64_t whole_limit = (int64_t)1 << 29;

void distrain_exact_round_floats(const int64_t *limbs, float *out, size_t count) {
    for (size_t i = 0; i < count; i++) {
        int64_t l0, l1, l2;
        const int64_t high = normalize(limbs + DISTRAIN_EXACT_LIMBS * i, &l0, &l1, &l2);
        if (high > -whole_limit && high < whole_limit) {
            out[i] = (float)whole(high, l2, l1, l0) * 0x1p-80f;
        } else {
            out[i] = (float)((double)high * 0x1p16 + (double)l2 * 0x1p-16 + (double)l1 * 0x1p-48);
        }
    }
}

void distrain_exact_round_doubles(const int64_t *limbs, double *out, size_t count) {
    for (size_t i = 0; i < count; i++) {
        int64_t l0, l1, l2;
        const int64_t high = normalize(limbs + DISTRAIN_EXACT_LIMBS * i, &l0, &l1, &l2);
        if (high > -whole_limit && high < whole_limit) {
            out[i] = (double)whole(high, l2, l1, l0) * 0x1p-80;
        } else {
            out[i] = (double)high * 0x1p16 + (double)l2 * 0x1p-16 + (double)l1 * 0x1p-48;
        }
    }
}
