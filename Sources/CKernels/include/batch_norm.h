// The per-channel passes of batch normalization (Layers/BatchNorm.swift) over (B, C, plane) tensors:
// plane = H*W for BatchNorm2d, 1 for BatchNorm1d. Sums are accumulated in double (the statistics of a
// whole global batch: up to millions of values per channel); the elementwise passes run in float.
#ifndef DISTRAIN_BATCH_NORM_H
#define DISTRAIN_BATCH_NORM_H
#include <stddef.h>
#include <stdint.h>

/// sums[c] = Σ (x − shift[c]) and squares[c] = Σ (x − shift[c])² over every sample's plane of channel c.
/// With a shift near the mean the variance Σ(x−k)²/n − (Σ(x−k)/n)² does not cancel catastrophically, as
/// Σx²/n − mean² does in a channel of nearly equal values (an image background).
/// With `exact` (values of exact_sums.h, planes `exact_stride` apart: channels sums, then channels squares) each
/// sample's plane total
/// is added there as an exact term instead (out-of-range terms counted in *exact_overflow), and sums and
/// squares are not touched.
void distrain_bn_shifted_moments(const float *x, size_t batch, size_t channels, size_t plane, const double *shift,
                                 double *sums, double *squares, int64_t *exact, size_t exact_stride,
                                 int64_t *exact_overflow);

/// y = (x − center[c]) · scale[c] + shift[c], then max(0, ·) when relu != 0 (a ReLU fused after the
/// normalization). y may be x.
void distrain_bn_normalize(const float *x, float *y, size_t batch, size_t channels, size_t plane,
                           const float *center, const float *scale, const float *shift, int relu);

/// sum_dy[c] = Σ g and sum_dy_centered[c] = Σ g · (x − mean[c]) over channel c, where g = dy, or with a
/// fused ReLU (relu_output not NULL: the layer's output) g = dy where relu_output > 0, else 0.
/// `exact` as in distrain_bn_shifted_moments.
void distrain_bn_gradient_sums(const float *x, const float *dy, const float *relu_output, size_t batch, size_t channels,
                               size_t plane, const double *mean, double *sum_dy, double *sum_dy_centered, int64_t *exact,
                               size_t exact_stride, int64_t *exact_overflow);

/// dx = dy_scale[c] · g + centered_scale[c] · (x − center[c]) + offset[c] in double, g as in the sums.
/// dx may be dy.
void distrain_bn_input_gradient(const float *x, const float *dy, const float *relu_output, float *dx, size_t batch,
                                size_t channels, size_t plane, const double *center, const double *dy_scale,
                                const double *centered_scale, const double *offset);

#endif
