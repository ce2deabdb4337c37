// im2col and its adjoint for the GEMM lowering of convolutions (Tensors/Convolution.swift).
#ifndef DISTRAIN_IM2COL_H
#define DISTRAIN_IM2COL_H
#include <stddef.h>

/// Unfolds x (B, C, H, W) into columns (C*kh*kw, B*OH*OW): row (c, ki, kj), column (b, oy, ox) holds
/// x[b, c, oy*stride - padding + ki, ox*stride - padding + kj], or 0 where that falls in the padding.
void distrain_im2col(const float *restrict x, size_t batch, size_t channels, size_t height, size_t width,
                     size_t kernel_height, size_t kernel_width, size_t stride, size_t padding,
                     float *restrict columns);

/// The adjoint: adds every entry of columns (C*kh*kw, B*OH*OW) into the position of dx (B, C, H, W) it
/// was read from by distrain_im2col (entries from the padding are dropped).
void distrain_col2im_accumulate(const float *restrict columns, size_t batch, size_t channels, size_t height,
                                size_t width, size_t kernel_height, size_t kernel_width, size_t stride,
                                size_t padding, float *restrict dx);

#endif
