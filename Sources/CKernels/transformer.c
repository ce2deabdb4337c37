// Row-wise transformer kernels; see transformer.h. Sums run over 16 independent lanes (the compiler may not
// reorder one running float sum), so every clone vectorizes them and the result is the same on every rank.
#include "transformer.h"
#include "clones.h"
#include <math.h>

/// Σ (x[i] − mean)² over 16 lanes.
static inline __attribute__((always_inline)) float squared_deviation_sum(const float *x, size_t n, float mean) {
    float lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int l = 0; l < 16; l++) {
            const float d = x[i + l] - mean;
            lanes[l] += d * d;
        }
    }
    float total = 0;
    for (; i < n; i++) total += (x[i] - mean) * (x[i] - mean);
    for (int l = 0; l < 16; l++) total += lanes[l];
    return total;
}

DISTRAIN_CLONES
void distrain_layer_norm_forward(const float *x, const float *weight, const float *bias, float *y, float *means,
                                 float *rstds, size_t rows, size_t c, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * c;
        float *out = y + r * c;
        const float mean = distrain_lane_sum(row, c) / (float)c;
        const float rstd = 1.0f / sqrtf(squared_deviation_sum(row, c, mean) / (float)c + eps);
        means[r] = mean;
        rstds[r] = rstd;
        if (bias) {
            for (size_t i = 0; i < c; i++) out[i] = (row[i] - mean) * rstd * weight[i] + bias[i];
        } else {
            for (size_t i = 0; i < c; i++) out[i] = (row[i] - mean) * rstd * weight[i];
        }
    }
}

DISTRAIN_CLONES
void distrain_layer_norm_backward(const float *x, const float *weight, const float *means, const float *rstds,
                                  const float *dy, float *dx, float *dweight, float *dbias, size_t rows, size_t c) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * c, *grad = dy + r * c;
        const float mean = means[r], rstd = rstds[r];
        float gradient_lanes[16] = {0}, product_lanes[16] = {0};
        size_t i = 0;
        for (; i + 16 <= c; i += 16) {
            for (int l = 0; l < 16; l++) {
                const float normalized = (row[i + l] - mean) * rstd, d_normalized = grad[i + l] * weight[i + l];
                dweight[i + l] += grad[i + l] * normalized;
                gradient_lanes[l] += d_normalized;
                product_lanes[l] += d_normalized * normalized;
            }
        }
        float gradient_sum = 0, product_sum = 0;
        for (; i < c; i++) {
            const float normalized = (row[i] - mean) * rstd, d_normalized = grad[i] * weight[i];
            dweight[i] += grad[i] * normalized;
            gradient_sum += d_normalized;
            product_sum += d_normalized * normalized;
        }
        for (int l = 0; l < 16; l++) {
            gradient_sum += gradient_lanes[l];
            product_sum += product_lanes[l];
        }
        if (dbias) {
            for (size_t j = 0; j < c; j++) dbias[j] += grad[j];
        }
        if (!dx) continue;
        const float g = gradient_sum / (float)c, p = product_sum / (float)c;
        float *out = dx + r * c;
        for (size_t j = 0; j < c; j++) {
            const float normalized = (row[j] - mean) * rstd;
            out[j] = rstd * (grad[j] * weight[j] - g - normalized * p);
        }
    }
}

/// Softmax over the first `valid` entries of a row of `columns`; the rest become 0.
static inline __attribute__((always_inline)) void softmax_prefix(float *row, size_t valid, size_t columns) {
    float maximum = row[0];
    for (size_t j = 1; j < valid; j++) maximum = fmaxf(maximum, row[j]);
    for (size_t j = 0; j < valid; j++) row[j] = exp_clamped(row[j] - maximum);
    const float inverse = 1.0f / distrain_lane_sum(row, valid);
    for (size_t j = 0; j < valid; j++) row[j] *= inverse;
    for (size_t j = valid; j < columns; j++) row[j] = 0;
}

DISTRAIN_CLONES
void distrain_causal_softmax(float *scores, size_t t) {
    for (size_t i = 0; i < t; i++) softmax_prefix(scores + i * t, i + 1, t);
}

DISTRAIN_CLONES
void distrain_causal_softmax_rows(float *scores, size_t rows, size_t columns, size_t offset) {
    for (size_t i = 0; i < rows; i++) softmax_prefix(scores + i * columns, offset + i + 1, columns);
}

DISTRAIN_CLONES
void distrain_causal_softmax_backward(const float *probabilities, float *dscores, size_t t, float scale) {
    for (size_t i = 0; i < t; i++) {
        const float *p = probabilities + i * t;
        float *d = dscores + i * t;
        float lanes[16] = {0};
        size_t j = 0;
        for (; j + 16 <= i + 1; j += 16) {
            for (int l = 0; l < 16; l++) lanes[l] += p[j + l] * d[j + l];
        }
        float dot = 0;
        for (; j <= i; j++) dot += p[j] * d[j];
        for (int l = 0; l < 16; l++) dot += lanes[l];
        for (j = 0; j <= i; j++) d[j] = p[j] * (d[j] - dot) * scale;
        for (j = i + 1; j < t; j++) d[j] = 0;
    }
}
