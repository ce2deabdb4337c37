// See batch_norm.h. The sums keep 8 independent double lanes per plane so the compiler vectorizes them
// (one running sum is a dependency chain it may not reorder: the Swift loops this replaces ran at one
// add per ~4 cycles). Planes narrower than a vector (BatchNorm1d) are summed across channels instead.
#include "batch_norm.h"
#include "clones.h"
#include "exact_term.h"
#include <stddef.h>

#define LANES 8

DISTRAIN_CLONES
void distrain_bn_shifted_moments(const float *x, size_t batch, size_t channels, size_t plane, const double *shift,
                                 double *sums, double *squares, int64_t *exact, size_t exact_stride,
                                 int64_t *exact_overflow) {
    for (size_t c = 0; c < channels; c++) sums[c] = squares[c] = 0;
    for (size_t s = 0; s < batch; s++) {
        for (size_t c = 0; c < channels; c++) {
            const float *p = x + (s * channels + c) * plane;
            const double k = shift[c];
            double sum[LANES] = {0}, square[LANES] = {0};
            size_t i = 0;
            for (; i + LANES <= plane; i += LANES)
                for (int l = 0; l < LANES; l++) { const double d = p[i + l] - k; sum[l] += d; square[l] += d * d; }
            double total = 0, total_square = 0;
            for (; i < plane; i++) { const double d = p[i] - k; total += d; total_square += d * d; }
            for (int l = 0; l < LANES; l++) { total += sum[l]; total_square += square[l]; }
            if (exact) {
                distrain_exact_add_term(exact + c, exact_stride, total, exact_overflow);
                distrain_exact_add_term(exact + channels + c, exact_stride, total_square, exact_overflow);
            } else {
                sums[c] += total;
                squares[c] += total_square;
            }
        }
    }
}

DISTRAIN_CLONES
void distrain_bn_normalize(const float *x, float *y, size_t batch, size_t channels, size_t plane,
                           const float *center, const float *scale, const float *shift, int relu) {
    for (size_t s = 0; s < batch; s++) {
        for (size_t c = 0; c < channels; c++) {
            const size_t offset = (s * channels + c) * plane;
            const float m = center[c], k = scale[c], b = shift[c];
            if (relu) {
                for (size_t i = 0; i < plane; i++) {
                    const float v = (x[offset + i] - m) * k + b;
                    y[offset + i] = v > 0 ? v : 0;
                }
            } else {
                for (size_t i = 0; i < plane; i++) y[offset + i] = (x[offset + i] - m) * k + b;
            }
        }
    }
}

/// dy, or with a fused ReLU (`masked`, a compile-time constant in each inlined copy) dy where the
/// layer's output is positive. Both loads are unconditional so the masked loops still vectorize.
#define INLINE static inline __attribute__((always_inline))
INLINE float gradient(const float *dy, const float *relu_output, size_t i, const int masked) {
    const float d = dy[i];
    if (!masked) return d;
    return relu_output[i] > 0 ? d : 0.0f;
}

INLINE void gradient_sums(const float *x, const float *dy, const float *relu_output, size_t batch, size_t channels,
                          size_t plane, const double *mean, double *sum_dy, double *sum_dy_centered, int64_t *exact,
                          size_t exact_stride, int64_t *exact_overflow, const int masked) {
    for (size_t c = 0; c < channels; c++) sum_dy[c] = sum_dy_centered[c] = 0;
    for (size_t s = 0; s < batch; s++) {
        for (size_t c = 0; c < channels; c++) {
            const size_t offset = (s * channels + c) * plane;
            const float *px = x + offset, *pd = dy + offset, *pr = masked ? relu_output + offset : NULL;
            const double m = mean[c];
            double g[LANES] = {0}, gx[LANES] = {0};
            size_t i = 0;
            for (; i + LANES <= plane; i += LANES)
                for (int l = 0; l < LANES; l++) {
                    const double d = gradient(pd, pr, i + l, masked);
                    g[l] += d;
                    gx[l] += d * ((double)px[i + l] - m);
                }
            double total = 0, total_centered = 0;
            for (; i < plane; i++) {
                const double d = gradient(pd, pr, i, masked);
                total += d;
                total_centered += d * ((double)px[i] - m);
            }
            for (int l = 0; l < LANES; l++) { total += g[l]; total_centered += gx[l]; }
            if (exact) {
                distrain_exact_add_term(exact + c, exact_stride, total, exact_overflow);
                distrain_exact_add_term(exact + channels + c, exact_stride, total_centered, exact_overflow);
            } else {
                sum_dy[c] += total;
                sum_dy_centered[c] += total_centered;
            }
        }
    }
}

DISTRAIN_CLONES
void distrain_bn_gradient_sums(const float *x, const float *dy, const float *relu_output, size_t batch, size_t channels,
                               size_t plane, const double *mean, double *sum_dy, double *sum_dy_centered, int64_t *exact,
                               size_t exact_stride, int64_t *exact_overflow) {
    if (relu_output) {
        gradient_sums(x, dy, relu_output, batch, channels, plane, mean, sum_dy, sum_dy_centered, exact, exact_stride,
                      exact_overflow, 1);
    } else {
        gradient_sums(x, dy, NULL, batch, channels, plane, mean, sum_dy, sum_dy_centered, exact, exact_stride,
                      exact_overflow, 0);
    }
}

INLINE void input_gradient(const float *x, const float *dy, const float *relu_output, float *dx, size_t batch,
                           size_t channels, size_t plane, const double *center, const double *dy_scale,
                           const double *centered_scale, const double *offset, const int masked) {
    for (size_t s = 0; s < batch; s++) {
        for (size_t c = 0; c < channels; c++) {
            const size_t at = (s * channels + c) * plane;
            const float *pd = dy + at, *px = x + at, *pr = masked ? relu_output + at : NULL;
            float *out = dx + at;
            // In double: a·g and o nearly cancel, and float rounding there made N ranks drift from one.
            const double m = center[c], a = dy_scale[c], b = centered_scale[c], o = offset[c];
            for (size_t i = 0; i < plane; i++) out[i] = (float)(a * gradient(pd, pr, i, masked) + b * ((double)px[i] - m) + o);
        }
    }
}

DISTRAIN_CLONES
void distrain_bn_input_gradient(const float *x, const float *dy, const float *relu_output, float *dx, size_t batch,
                                size_t channels, size_t plane, const double *center, const double *dy_scale,
                                const double *centered_scale, const double *offset) {
    if (relu_output) input_gradient(x, dy, relu_output, dx, batch, channels, plane, center, dy_scale, centered_scale, offset, 1);
    else input_gradient(x, dy, NULL, dx, batch, channels, plane, center, dy_scale, centered_scale, offset, 0);
}
