// See wire.h. _Float16 conversions compile to F16C's vcvtps2ph/vcvtph2ps in the x86-64-v3 and -v4 clones.
#include "wire.h"
#include <string.h>
#include "clones.h"

static inline uint16_t to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);  // NaN stays a (quiet) NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
    return (uint16_t)(bits >> 16);
}

static inline float from_bf16(uint16_t value) {
    const uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, 4);
    return result;
}

static inline uint16_t to_fp16(float value) {
    const _Float16 half = (_Float16)value;
    uint16_t bits;
    memcpy(&bits, &half, 2);
    return bits;
}

static inline float from_fp16(uint16_t bits) {
    _Float16 half;
    memcpy(&half, &bits, 2);
    return (float)half;
}

DISTRAIN_CLONES
void distrain_pack_fp16(const float *restrict x, uint16_t *restrict packed, size_t count) {
    for (size_t i = 0; i < count; i++) packed[i] = to_fp16(x[i]);
}

DISTRAIN_CLONES
void distrain_unpack_fp16(const uint16_t *restrict packed, float *restrict x, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] = from_fp16(packed[i]);
}

DISTRAIN_CLONES
void distrain_pack_bf16(const float *restrict x, uint16_t *restrict packed, size_t count) {
    for (size_t i = 0; i < count; i++) packed[i] = to_bf16(x[i]);
}

DISTRAIN_CLONES
void distrain_unpack_bf16(const uint16_t *restrict packed, float *restrict x, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] = from_bf16(packed[i]);
}

DISTRAIN_CLONES
void distrain_sum_fp16(const uint16_t *restrict in, uint16_t *restrict inout, size_t count) {
    for (size_t i = 0; i < count; i++) inout[i] = to_fp16(from_fp16(in[i]) + from_fp16(inout[i]));
}

DISTRAIN_CLONES
void distrain_sum_bf16(const uint16_t *restrict in, uint16_t *restrict inout, size_t count) {
    for (size_t i = 0; i < count; i++) inout[i] = to_bf16(from_bf16(in[i]) + from_bf16(inout[i]));
}
