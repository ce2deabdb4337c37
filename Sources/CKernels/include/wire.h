// 16-bit gradient formats for the sum between hosts (`--wire fp16|bf16`): packing float32 gradients,
// unpacking the sums, and the elementwise sums an MPI reduction applies to packed values.
#ifndef DISTRAIN_WIRE_H
#define DISTRAIN_WIRE_H
#include <stddef.h>
#include <stdint.h>

/// IEEE half precision (round to nearest even; beyond ±65504 becomes ±inf, so the step's finiteness
/// check sees an overflow), and bfloat16 (float32's exponent, 8 bits of mantissa, round to nearest even).
void distrain_pack_fp16(const float *restrict x, uint16_t *restrict packed, size_t count);
void distrain_unpack_fp16(const uint16_t *restrict packed, float *restrict x, size_t count);
void distrain_pack_bf16(const float *restrict x, uint16_t *restrict packed, size_t count);
void distrain_unpack_bf16(const uint16_t *restrict packed, float *restrict x, size_t count);

/// inout[i] = round16(float(in[i]) + float(inout[i])): one step of an MPI reduction over packed values.
void distrain_sum_fp16(const uint16_t *restrict in, uint16_t *restrict inout, size_t count);
void distrain_sum_bf16(const uint16_t *restrict in, uint16_t *restrict inout, size_t count);

#endif
