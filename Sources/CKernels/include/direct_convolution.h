#ifndef DISTRAIN_DIRECT_CONVOLUTION_H
#define DISTRAIN_DIRECT_CONVOLUTION_H
#include <stddef.h>

// Direct stride-1 convolution of one image, for layers with few channels where im2col + GEMM wastes its
// time moving memory (LeNet: 3→6 and 6→16 channels, 5x5). The trick that keeps every inner loop a
// plain vector load: an input plane of width Wx is read as one flat array, so output q = oy*Wx + ox of
// a k×k "valid" correlation reads x[q + ki*Wx + kj] for every (ki, kj). Outputs with ox >= Wx-k+1 wrap
// into the next row and are garbage; callers keep only the valid columns (distrain_conv_extract), and
// for the weight gradient they give those columns a zero gradient so they add nothing.
//
// Shared shapes (all row-major, one image):
//   x:    (C, Hx, Wx) planes, already zero-padded by the caller; followed by at least
//         distrain_conv_slack(k) readable, finite floats (the flat reads run past the last plane)
//   OHx = Hx - k + 1 output rows; a "full" output plane holds distrain_conv_full_plane(OHx, Wx) floats
//   w:    (O, C, k, k)

/// Floats one full-width output plane occupies: OHx*Wx rounded up to whole 8-float vectors.
size_t distrain_conv_full_plane(size_t output_rows, size_t width);

/// Readable zero floats a caller must keep after the last input plane for kernel size k.
size_t distrain_conv_slack(size_t k);

/// full[o, q] = Σ_{c,ki,kj} w[o,c,ki,kj] · x[c, q + ki*Wx + kj] for q < full_plane; full is (O, full_plane).
void distrain_conv_valid(const float *restrict x, const float *restrict w, float *restrict full,
                         size_t channels, size_t height, size_t width, size_t k, size_t outputs);

/// dw[o,c,ki,kj] += Σ_q dfull[o, q] · x[c, q + ki*Wx + kj]; dfull is (O, full_plane) and must be 0 at
/// every garbage position (wrapped columns and the rounding tail).
void distrain_conv_weight_gradient(const float *restrict x, const float *restrict dfull, float *restrict dw,
                                   size_t channels, size_t height, size_t width, size_t k, size_t outputs);

/// y[o, oy, ox] = full[o, oy*Wx + ox] (+ bias[o] when bias is not NULL, then max(0, ·) when relu != 0)
/// for the valid ox < out_width. full is (O, full_plane); y is (O, out_rows, out_width).
void distrain_conv_extract(const float *restrict full, const float *restrict bias, float *restrict y,
                           size_t outputs, size_t out_rows, size_t out_width, size_t width, int relu);

/// Copies `planes` planes (H, W) into zero-filled planes (H + top + bottom, W + left + right) placed at
/// (top, left), every destination float written; dst planes follow each other with stride `dst_plane`
/// (>= padded H*W; the gap after each plane is zeroed too).
void distrain_pad_planes(const float *restrict src, float *restrict dst, size_t planes, size_t height, size_t width,
                         size_t top, size_t bottom, size_t left, size_t right, size_t dst_plane);

/// d[i] = y[i] > 0 ? d[i] : 0 in place when relu != 0; returns the sum of the (masked) d.
float distrain_mask_sum_inplace(const float *restrict y, float *restrict d, size_t n, int relu);

/// Reorders weights (O, C, k, k) into the input-gradient kernel (C, O, k, k) rotated by 180°:
/// flipped[c, o, ki, kj] = w[o, c, k-1-ki, k-1-kj].
void distrain_conv_flip_weights(const float *restrict w, float *restrict flipped, size_t outputs, size_t channels, size_t k);

#endif
