// Kernels around the int8 GEMM of quantized inference (Compression/QuantizedLayers.swift): quantizing
// activations, unfolding them for convolutions, and turning int32 accumulators back into floats.
#ifndef DISTRAIN_QUANTIZED_H
#define DISTRAIN_QUANTIZED_H
#include <stddef.h>
#include <stdint.h>

/// q[i] = clamp(round(x[i] * inverse_scale) + zero_point, 0, max_code): affine uint8 codes of a tensor.
void distrain_quantize_u8(const float *restrict x, uint8_t *restrict q, size_t count, float inverse_scale,
                          int32_t zero_point, int32_t max_code);

/// distrain_im2col for uint8 codes: columns (C*kh*kw, B*OH*OW); positions in the padding hold
/// `padding_code` (the zero point: the code of the real value 0).
void distrain_im2col_u8(const uint8_t *restrict x, size_t batch, size_t channels, size_t height, size_t width,
                        size_t kernel_height, size_t kernel_width, size_t stride, size_t padding,
                        uint8_t padding_code, uint8_t *restrict columns);

/// y[r, c] = (acc[r, c] - correction[c]) * scale[c] + bias[c], then max(0, ·) when relu: the float output
/// of an int8 GEMM whose rows are samples (Linear). acc and y are (rows, columns).
void distrain_dequantize_rows(const int32_t *restrict acc, float *restrict y, size_t rows, size_t columns,
                              const int32_t *restrict correction, const float *restrict scale,
                              const float *restrict bias, int relu);

/// The same for a convolution: acc is (images*pixels, channels), y is (images, channels, pixels) — NCHW.
void distrain_dequantize_to_planes(const int32_t *restrict acc, float *restrict y, size_t images, size_t pixels,
                                   size_t channels, const int32_t *restrict correction, const float *restrict scale,
                                   const float *restrict bias, int relu);

#endif
