// Elementwise kernels Swift does not vectorize well on the baseline x86-64 target. `restrict` lets the
// compiler vectorize; DISTRAIN_CLONES (clones.h) adds AVX2 and AVX-512 versions chosen at load time.
#include "kernels.h"
#include <math.h>

#include "clones.h"

DISTRAIN_CLONES
void distrain_adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                          float shrink, float l2, float beta1, float beta2, float step_size,
                          float inverse_root_correction2, float epsilon) {
    const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
    for (size_t i = 0; i < n; i++) {
        float pv = p[i] * shrink;
        float gv = g[i] + l2 * pv;
        float mv = beta1 * m[i] + one_minus_beta1 * gv;
        float vv = beta2 * v[i] + one_minus_beta2 * gv * gv;
        m[i] = mv;
        v[i] = vv;
        p[i] = pv - step_size * mv / (sqrtf(vv) * inverse_root_correction2 + epsilon);
    }
}

DISTRAIN_CLONES
int distrain_all_finite(const float *x, size_t n) {
    // x - x is 0 for finite values and NaN for NaN or infinity; the sum keeps any NaN.
    float accumulator[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int lane = 0; lane < 16; lane++) accumulator[lane] += x[i + lane] - x[i + lane];
    }
    float total = 0;
    for (; i < n; i++) total += x[i] - x[i];
    for (int lane = 0; lane < 16; lane++) total += accumulator[lane];
    return total == 0.0f;
}

DISTRAIN_CLONES
void distrain_relu_backward_inplace(const float *restrict y, float *restrict d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

DISTRAIN_CLONES
void distrain_relu_backward(const float *restrict y, const float *restrict dy, float *restrict dx, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

DISTRAIN_CLONES
void distrain_add_row_bias(float *restrict y, const float *restrict bias, size_t rows, size_t columns, int relu) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * columns;
        if (relu) {
            for (size_t c = 0; c < columns; c++) { float v = row[c] + bias[c]; row[c] = v > 0.0f ? v : 0.0f; }
        } else {
            for (size_t c = 0; c < columns; c++) row[c] += bias[c];
        }
    }
}

void distrain_prefetch(const void *p, size_t n) {
    const char *bytes = p;
    for (size_t offset = 0; offset < n; offset += 64) __builtin_prefetch(bytes + offset);
}

DISTRAIN_CLONES
void distrain_normalize_bytes(const uint8_t *restrict src, float *restrict dst, size_t n, float scale, float offset) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i] * scale + offset;
}

DISTRAIN_CLONES
void distrain_add_bias_copy(const float *restrict src, float *restrict dst, size_t n, float bias, int relu) {
    if (relu) {
        for (size_t i = 0; i < n; i++) { float v = src[i] + bias; dst[i] = v > 0.0f ? v : 0.0f; }
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = src[i] + bias;
    }
}

DISTRAIN_CLONES
float distrain_mask_copy_sum(const float *restrict out, const float *restrict src, float *restrict dst, size_t n, int relu) {
    // Two simple passes (select, then a 16-lane sum) vectorize; one fused loop with the branch did not.
    if (relu) {
        for (size_t i = 0; i < n; i++) dst[i] = out[i] > 0.0f ? src[i] : 0.0f;
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
    }
    return distrain_lane_sum(dst, n);
}

DISTRAIN_CLONES
void distrain_add_channel_bias(float *restrict y, const float *restrict bias, size_t channels, size_t pixels, int relu) {
    for (size_t c = 0; c < channels; c++) {
        float *row = y + c * pixels;
        const float b = bias[c];
        if (relu) {
            for (size_t p = 0; p < pixels; p++) { float v = row[p] + b; row[p] = v > 0.0f ? v : 0.0f; }
        } else {
            for (size_t p = 0; p < pixels; p++) row[p] += b;
        }
    }
}

static inline uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void distrain_dropout_forward(uint64_t state[4], float keep, float scale, const float *restrict x, float *restrict y,
                              float *restrict mask, size_t n) {
    uint64_t s0 = state[0], s1 = state[1], s2 = state[2], s3 = state[3];  // in registers for the loop
    for (size_t i = 0; i < n; i++) {
        const uint64_t result = rotate_left(s1 * 5, 7) * 9, t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotate_left(s3, 45);
        const float u = (float)(result >> 40) * (1.0f / 16777216.0f);
        mask[i] = u < keep ? scale : 0.0f;
        y[i] = x[i] * mask[i];
    }
    state[0] = s0, state[1] = s1, state[2] = s2, state[3] = s3;
}

void distrain_f32_to_bf16(const float *restrict src, size_t rows, size_t cols, size_t ld, uint16_t *restrict dst) {
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *row = (const uint32_t *)(src + r * ld);
        uint16_t *out = dst + r * cols;
        for (size_t c = 0; c < cols; c++) {
            uint32_t bits = row[c];
            uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
            uint16_t nan = (uint16_t)((bits >> 16) | 0x40u);
            out[c] = ((bits & 0x7FFFFFFFu) > 0x7F800000u) ? nan : (uint16_t)(rounded >> 16);
        }
    }
}
