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
// Shapes (row-major, one image):
//   x:    `channels` planes of `plane` floats apart, each read flat with row width `width`; the caller
//         zero-pads them and keeps the flat reads (up to full_plane + (k-1)*(width+1) floats from a
//         plane's start) inside readable, finite memory (distrain_conv_slack(k) after the last plane)
//   w:    (outputs, channels, k, k)
//   full: `outputs` planes of `full_plane` floats (a multiple of 8: distrain_conv_full_plane)

/// Floats a full-width output of `rows` rows of `width` occupies: rows*width rounded up to 8-float vectors.
size_t distrain_conv_full_plane(size_t rows, size_t width);

/// Readable zero floats a caller must keep after the last input plane of a forward pass, kernel size k.
size_t distrain_conv_slack(size_t k);

/// full[o, q] = Σ_{c,ki,kj} w[o,c,ki,kj] · x[c, q + ki*width + kj] for q < full_plane.
/// Every plane of x must be zero outside flat indices [nonzero_begin, nonzero_end) (the caller's zero
/// padding rows; pass 0 and the plane's length when there are none): whole kernel rows that would read
/// only there are skipped. Backward's dx pass reads dy planes with (k-1) zero rows on either side, where
/// this skips ~30% of LeNet's conv2 work.
void distrain_conv_valid(const float *restrict x, size_t plane, size_t width, const float *restrict w,
                         float *restrict full, size_t full_plane, size_t channels, size_t k, size_t outputs,
                         size_t nonzero_begin, size_t nonzero_end);

/// dw[o,c,ki,kj] += Σ_b Σ_{q < full_plane} dfull_b[o, q] · x_b[c, q + ki*width + kj] over `images` images
/// (x_b = x + b*x_image, dfull_b = dfull + b*d_image). dfull planes are `d_plane` floats apart and must be 0
/// at every garbage position (wrapped columns and the rounding tail).
void distrain_conv_weight_gradient(const float *restrict x, size_t x_image, size_t plane, size_t width,
                                   const float *restrict dfull, size_t d_image, size_t d_plane, size_t full_plane,
                                   size_t images, float *restrict dw, size_t channels, size_t k, size_t outputs);

/// y[o, r, i] = full[o, offset + r*width + i] for r < out_rows, i < out_width, plus bias[o] when bias is not
/// NULL, then max(0, ·) when relu != 0. y is (outputs, out_rows, out_width).
void distrain_conv_extract(const float *restrict full, size_t full_plane, size_t offset, size_t width,
                           const float *restrict bias, float *restrict y, size_t outputs, size_t out_rows,
                           size_t out_width, int relu);

/// Copies `planes` planes (H, W) into consecutive planes (H + 2·padding, W + 2·padding) with zeros
/// around each. Every destination float is written.
void distrain_pad_planes(const float *restrict src, float *restrict dst, size_t planes, size_t height, size_t width,
                         size_t padding);

/// The backward layout of dy for `outputs` planes of (rows, out_width): each destination plane (`plane`
/// floats apart) is `front` zeros, then `rows` rows of `width` floats — dy masked by the ReLU (dy where
/// y > 0, else 0, when relu != 0) followed by zeros in the garbage columns — then zeros to its end.
/// bias_gradient[o] += the sum of plane o's masked dy. y and dy are (outputs, rows, out_width).
void distrain_conv_gradient_planes(const float *restrict y, const float *restrict dy, float *restrict planes,
                                   float *restrict bias_gradient, size_t outputs, size_t rows, size_t out_width,
                                   size_t width, size_t front, size_t plane, int relu);

/// Reorders weights (O, C, k, k) into the input-gradient kernel (C, O, k, k) rotated by 180°:
/// flipped[c, o, ki, kj] = w[o, c, k-1-ki, k-1-kj].
void distrain_conv_flip_weights(const float *restrict w, float *restrict flipped, size_t outputs, size_t channels, size_t k);

#endif
