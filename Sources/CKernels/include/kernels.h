#ifndef DISTRAIN_KERNELS_H
#define DISTRAIN_KERNELS_H
#include <stddef.h>

/// One Adam/AdamW step over n parameters (see Optimizers/Adam.swift for the formulas).
/// p, g, m, v must not overlap. shrink = 1 - lr*wd for AdamW (1 for Adam); l2 = wd for Adam (0 for AdamW).
void distrain_adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                          float shrink, float l2, float beta1, float beta2, float step_size,
                          float inverse_root_correction2, float epsilon);

/// 1 when every x[i] is finite, else 0.
int distrain_all_finite(const float *x, size_t n);

#include <stdint.h>

/// d[i] = y[i] > 0 ? d[i] : 0 (ReLU backward in place; y is the ReLU's output).
void distrain_relu_backward_inplace(const float *restrict y, float *restrict d, size_t n);

/// dx[i] = y[i] > 0 ? dy[i] : 0 into a separate buffer.
void distrain_relu_backward(const float *restrict y, const float *restrict dy, float *restrict dx, size_t n);

/// y[r, c] += bias[c], then max(0, ·) when relu != 0; y is rows × columns, row-major.
void distrain_add_row_bias(float *restrict y, const float *restrict bias, size_t rows, size_t columns, int relu);

/// Asks the CPU to start loading bytes [p, p + n) into cache (a hint; no effect on results).
void distrain_prefetch(const void *p, size_t n);

/// dst[i] = src[i] * scale + offset (bytes to normalized floats).
void distrain_normalize_bytes(const uint8_t *restrict src, float *restrict dst, size_t n, float scale, float offset);

/// dst[i] = src[i] + bias, then max(0, ·) when relu != 0.
void distrain_add_bias_copy(const float *restrict src, float *restrict dst, size_t n, float bias, int relu);

/// dst[i] = out[i] > 0 ? src[i] : 0 when relu != 0 (else a copy); returns the sum of dst.
float distrain_mask_copy_sum(const float *restrict out, const float *restrict src, float *restrict dst, size_t n, int relu);

/// y[c, p] += bias[c], then max(0, ·) when relu != 0, in place; y is channels × pixels.
void distrain_add_channel_bias(float *restrict y, const float *restrict bias, size_t channels, size_t pixels, int relu);

/// Dropout's forward for one sample: u = the next xoshiro256** output's top 24 bits / 2^24 (the stream of
/// Tensors.SeededGenerator.nextUnitFloat, continued from `state`, which is advanced), mask[i] = u < keep ?
/// scale : 0, y[i] = x[i] · mask[i]. The same numbers as the Swift generator, so the same masks.
void distrain_dropout_forward(uint64_t state[4], float keep, float scale, const float *restrict x, float *restrict y,
                              float *restrict mask, size_t n);

#endif

// dst (rows × cols, contiguous) = src (rows × cols, leading dimension ld) rounded to bfloat16, nearest-even
// (NaN stays NaN): the operands of a bf16 GEMM with fp32 accumulation.
void distrain_f32_to_bf16(const float *restrict src, size_t rows, size_t cols, size_t ld, uint16_t *restrict dst);
