// Direct stride-1 convolution kernels (see include/direct_convolution.h for the flat-plane trick).
//
// Written with 8-float vector types rather than intrinsics so one source serves every target_clones
// variant: AVX2 (16 ymm registers, the tiles below are sized for it), AVX-512 (Zen 4 runs 512-bit FMAs
// as two 256-bit halves, so ymm tiles lose nothing there) and the SSE baseline (correct, slower).
// Register tiles are fixed at compile time by instantiating an always-inline body per tile shape.
#include "direct_convolution.h"
#include <string.h>

#include "clones.h"
#define INLINE static inline __attribute__((always_inline))

typedef float v8 __attribute__((vector_size(32)));
/// The same vector at 4-byte alignment: a load or store through it is an unaligned vector access.
typedef float v8u __attribute__((vector_size(32), aligned(4)));

INLINE v8 load8(const float *p) { return *(const v8u *)p; }
INLINE void store8(float *p, v8 v) { *(v8u *)p = v; }
INLINE v8 splat8(float s) { return (v8){s, s, s, s, s, s, s, s}; }
/// a where mask lanes are set, else b (a macro: a helper taking vectors would change ABI between clones).
typedef int v8i __attribute__((vector_size(32)));
#define SELECT8(mask, a, b) ((v8)(((mask) & (v8i)(a)) | (~(mask) & (v8i)(b))))

INLINE float sum8(v8 v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

size_t distrain_conv_full_plane(size_t output_rows, size_t width) { return (output_rows * width + 7) / 8 * 8; }

// The flat reads of the last plane reach (full_plane - 1) + (k-1)*Wx + (k-1): at most 7 + (k-1) past
// the plane's end, plus 16 floats of margin for the two-vector tiles.
size_t distrain_conv_slack(size_t k) { return k + 24; }

// MARK: - Forward ("valid" correlation into full-width planes)

/// One tile: OB output channels × QV vectors of 8 outputs starting at q0, over kernel rows
/// [ki_begin, ki_end). 2×6 = 12 accumulators, 2 input loads and 1 broadcast register fit AVX2's 16.
INLINE void valid_tile(const float *restrict x, const float *restrict w, float *restrict full,
                       size_t channels, size_t plane, size_t width, size_t k, size_t full_plane,
                       size_t o0, size_t q0, size_t ki_begin, size_t ki_end, const int OB, const int QV) {
    v8 acc[6][2];
    for (int o = 0; o < OB; o++)
        for (int v = 0; v < QV; v++) acc[o][v] = splat8(0);
    const size_t kk = k * k;
    for (size_t c = 0; c < channels; c++) {
        for (size_t ki = ki_begin; ki < ki_end; ki++) {
            const float *row = x + c * plane + ki * width + q0;
            const float *wrow = w + (o0 * channels + c) * kk + ki * k;
            for (size_t kj = 0; kj < k; kj++) {
                v8 in[2];
                for (int v = 0; v < QV; v++) in[v] = load8(row + kj + 8 * v);
                for (int o = 0; o < OB; o++) {
                    const v8 weight = splat8(wrow[o * channels * kk + kj]);
                    for (int v = 0; v < QV; v++) acc[o][v] += in[v] * weight;
                }
            }
        }
    }
    for (int o = 0; o < OB; o++)
        for (int v = 0; v < QV; v++) store8(full + (o0 + o) * full_plane + q0 + 8 * v, acc[o][v]);
}

#define VALID_TILE_CASE(OB, QV) \
    case OB: valid_tile(x, w, full, channels, plane, width, k, full_plane, o0, q0, ki_begin, ki_end, OB, QV); break;

/// The tile at q0 (8·QV outputs) reads x[q0 + ki*width .. q0 + ki*width + 8·QV + k - 2] for kernel row ki;
/// the rows whose reads all fall outside [nonzero_begin, nonzero_end) would only add zeros, and are skipped.
INLINE void valid_tiles(const float *restrict x, const float *restrict w, float *restrict full,
                        size_t channels, size_t plane, size_t width, size_t k, size_t full_plane,
                        size_t nonzero_begin, size_t nonzero_end, size_t o0, size_t ob, size_t q0, const int QV) {
    const size_t last_read = q0 + 8 * QV + k - 2;  // for ki = 0
    const size_t ki_begin = last_read >= nonzero_begin ? 0 : (nonzero_begin - last_read + width - 1) / width;
    size_t ki_end = q0 >= nonzero_end ? 0 : (nonzero_end - q0 + width - 1) / width;
    if (ki_end > k) ki_end = k;
    switch (ob) {
        VALID_TILE_CASE(1, QV) VALID_TILE_CASE(2, QV) VALID_TILE_CASE(3, QV)
        VALID_TILE_CASE(4, QV) VALID_TILE_CASE(5, QV) VALID_TILE_CASE(6, QV)
    }
}

INLINE void valid_all(const float *restrict x, size_t plane, size_t width, const float *restrict w,
                      float *restrict full, size_t full_plane, size_t channels, size_t k, size_t outputs,
                      size_t nonzero_begin, size_t nonzero_end) {
    for (size_t o0 = 0; o0 < outputs; o0 += 6) {
        const size_t ob = outputs - o0 < 6 ? outputs - o0 : 6;
        size_t q0 = 0;
        for (; q0 + 16 <= full_plane; q0 += 16)
            valid_tiles(x, w, full, channels, plane, width, k, full_plane, nonzero_begin, nonzero_end, o0, ob, q0, 2);
        if (q0 < full_plane)
            valid_tiles(x, w, full, channels, plane, width, k, full_plane, nonzero_begin, nonzero_end, o0, ob, q0, 1);
    }
}

DISTRAIN_CLONES
void distrain_conv_valid(const float *restrict x, size_t plane, size_t width, const float *restrict w,
                         float *restrict full, size_t full_plane, size_t channels, size_t k, size_t outputs,
                         size_t nonzero_begin, size_t nonzero_end) {
    // The common kernel sizes get their own copy with k a constant, so the kj loop unrolls.
    switch (k) {
        case 3: valid_all(x, plane, width, w, full, full_plane, channels, 3, outputs, nonzero_begin, nonzero_end); break;
        case 5: valid_all(x, plane, width, w, full, full_plane, channels, 5, outputs, nonzero_begin, nonzero_end); break;
        default: valid_all(x, plane, width, w, full, full_plane, channels, k, outputs, nonzero_begin, nonzero_end); break;
    }
}

// MARK: - Weight gradient

/// The shapes of one weight-gradient call (see distrain_conv_weight_gradient).
struct weight_shape {
    size_t images, x_image, plane, width, d_image, d_plane, full_plane, channels, k, outputs;
};

/// One tile: OB output channels × all K kernel columns of row ki of channel c, summed over every q of
/// every image (so the horizontal sums at the end are paid once per group of images, not per image).
/// Each step loads OB gradient vectors and K input vectors for OB*K FMAs.
INLINE void weight_tile(const struct weight_shape *s, const float *restrict x, const float *restrict dfull,
                        float *restrict dw, size_t o0, size_t c, size_t ki, const int OB, const int K) {
    v8 acc[6][7];
    for (int o = 0; o < OB; o++)
        for (int j = 0; j < K; j++) acc[o][j] = splat8(0);
    for (size_t b = 0; b < s->images; b++) {
        const float *row = x + b * s->x_image + c * s->plane + ki * s->width;
        const float *d0 = dfull + b * s->d_image + o0 * s->d_plane;
        for (size_t q = 0; q < s->full_plane; q += 8) {
            v8 d[6];
            for (int o = 0; o < OB; o++) d[o] = load8(d0 + o * s->d_plane + q);
            for (int j = 0; j < K; j++) {
                const v8 in = load8(row + q + j);
                for (int o = 0; o < OB; o++) acc[o][j] += d[o] * in;
            }
        }
    }
    const size_t k = s->k, kk = k * k;
    for (int o = 0; o < OB; o++) {
        float *target = dw + ((o0 + o) * s->channels + c) * kk + ki * k;
        for (int j = 0; j < K; j++) target[j] += sum8(acc[o][j]);
    }
}

/// All (c, ki) rows for a kernel width K known at compile time; OB = as many channels as keep
/// OB*K accumulators + OB + 1 vectors within 16 registers.
INLINE void weight_gradient_k(const struct weight_shape *s, const float *restrict x, const float *restrict dfull,
                              float *restrict dw, const int K, const int OB) {
    for (size_t c = 0; c < s->channels; c++) {
        for (size_t ki = 0; ki < s->k; ki++) {
            size_t o0 = 0;
            for (; o0 + OB <= s->outputs; o0 += OB) weight_tile(s, x, dfull, dw, o0, c, ki, OB, K);
            for (; o0 < s->outputs; o0++) weight_tile(s, x, dfull, dw, o0, c, ki, 1, K);
        }
    }
}

DISTRAIN_CLONES
void distrain_conv_weight_gradient(const float *restrict x, size_t x_image, size_t plane, size_t width,
                                   const float *restrict dfull, size_t d_image, size_t d_plane, size_t full_plane,
                                   size_t images, float *restrict dw, size_t channels, size_t k, size_t outputs) {
    const struct weight_shape s = {images, x_image, plane, width, d_image, d_plane, full_plane, channels, k, outputs};
    switch (k) {
        case 1: weight_gradient_k(&s, x, dfull, dw, 1, 6); break;
        case 2: weight_gradient_k(&s, x, dfull, dw, 2, 4); break;
        case 3: weight_gradient_k(&s, x, dfull, dw, 3, 3); break;
        case 4: weight_gradient_k(&s, x, dfull, dw, 4, 2); break;
        case 5: weight_gradient_k(&s, x, dfull, dw, 5, 2); break;
        case 6: weight_gradient_k(&s, x, dfull, dw, 6, 1); break;
        case 7: weight_gradient_k(&s, x, dfull, dw, 7, 1); break;
        default:
            // Wider kernels: plain loops (Conv2D does not choose the direct lowering for them).
            for (size_t b = 0; b < images; b++)
                for (size_t o = 0; o < outputs; o++)
                    for (size_t c = 0; c < channels; c++)
                        for (size_t ki = 0; ki < k; ki++)
                            for (size_t kj = 0; kj < k; kj++) {
                                float total = 0;
                                const float *in = x + b * x_image + c * plane + ki * width + kj;
                                const float *d = dfull + b * d_image + o * d_plane;
                                for (size_t q = 0; q < full_plane; q++) total += d[q] * in[q];
                                dw[((o * channels + c) * k + ki) * k + kj] += total;
                            }
    }
}

// MARK: - Layout helpers

DISTRAIN_CLONES
void distrain_conv_extract(const float *restrict full, size_t full_plane, size_t offset, size_t width,
                           const float *restrict bias, float *restrict y, size_t outputs, size_t out_rows,
                           size_t out_width, int relu) {
    for (size_t o = 0; o < outputs; o++) {
        const float b = bias ? bias[o] : 0.0f;
        for (size_t r = 0; r < out_rows; r++) {
            const float *src = full + o * full_plane + offset + r * width;
            float *dst = y + (o * out_rows + r) * out_width;
            if (out_width >= 8) {
                // Whole vectors, the last one overlapping so it ends at the row's end (no scalar tail).
                const v8 bias8 = {b, b, b, b, b, b, b, b}, zero = {0, 0, 0, 0, 0, 0, 0, 0};
                for (size_t i = 0;; i += 8) {
                    if (i + 8 > out_width) i = out_width - 8;
                    const v8 v = *(const v8u *)(src + i) + bias8;
                    *(v8u *)(dst + i) = relu ? SELECT8(v > zero, v, zero) : v;
                    if (i + 8 == out_width) break;
                }
            } else if (relu) {
                for (size_t i = 0; i < out_width; i++) { float v = src[i] + b; dst[i] = v > 0.0f ? v : 0.0f; }
            } else {
                for (size_t i = 0; i < out_width; i++) dst[i] = src[i] + b;
            }
        }
    }
}

void distrain_pad_planes(const float *restrict src, float *restrict dst, size_t planes, size_t height, size_t width,
                         size_t padding) {
    const size_t padded_width = width + 2 * padding, border = padding * padded_width;
    for (size_t p = 0; p < planes; p++) {
        float *out = dst + p * (height + 2 * padding) * padded_width;
        const float *in = src + p * height * width;
        memset(out, 0, border * sizeof(float));
        float *line = out + border;
        for (size_t r = 0; r < height; r++, line += padded_width) {
            for (size_t i = 0; i < padding; i++) line[i] = 0.0f;
            memcpy(line + padding, in + r * width, width * sizeof(float));
            for (size_t i = padding + width; i < padded_width; i++) line[i] = 0.0f;
        }
        memset(line, 0, border * sizeof(float));
    }
}

DISTRAIN_CLONES
void distrain_conv_gradient_planes(const float *restrict y, const float *restrict dy, float *restrict planes,
                                   float *restrict bias_gradient, size_t outputs, size_t rows, size_t out_width,
                                   size_t width, size_t front, size_t plane, int relu) {
    for (size_t o = 0; o < outputs; o++) {
        float *out = planes + o * plane;
        const float *yo = y + o * rows * out_width, *dyo = dy + o * rows * out_width;
        const float *end = out + plane;
        memset(out, 0, front * sizeof(float));
        float *line = out + front;
        const v8 zero = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t r = 0; r < rows; r++, line += width) {
            const float *yr = yo + r * out_width, *dr = dyo + r * out_width;
            if (out_width >= 8) {
                // Whole vectors; the last one ends exactly at the row's end, overlapping the one before
                // (it rewrites the same values), so no scalar tail.
                for (size_t i = 0;; i += 8) {
                    if (i + 8 > out_width) i = out_width - 8;
                    // Direct vector accesses, no helper calls: in the baseline clone a call passing
                    // vectors would change ABI.
                    const v8 d = *(const v8u *)(dr + i);
                    *(v8u *)(line + i) = relu ? SELECT8(*(const v8u *)(yr + i) > zero, d, zero) : d;
                    if (i + 8 == out_width) break;
                }
            } else {
                for (size_t i = 0; i < out_width; i++) line[i] = (!relu || yr[i] > 0.0f) ? dr[i] : 0.0f;
            }
            // The garbage columns: one zero vector when it fits in the plane (it may run into the next
            // row's first columns, which that row then overwrites, or into the zero tail).
            if (width > out_width) {
                if (line + out_width + 8 <= end) *(v8u *)(line + out_width) = zero;
                else for (size_t i = out_width; i < width; i++) line[i] = 0.0f;
            }
        }
        memset(line, 0, (size_t)(end - line) * sizeof(float));
        // The garbage columns are zero, so the bias gradient is a plain (vectorizable) sum of the rows.
        bias_gradient[o] += distrain_lane_sum(out + front, rows * width);
    }
}

void distrain_conv_flip_weights(const float *restrict w, float *restrict flipped, size_t outputs, size_t channels, size_t k) {
    const size_t kk = k * k;
    for (size_t o = 0; o < outputs; o++)
        for (size_t c = 0; c < channels; c++)
            for (size_t i = 0; i < kk; i++) flipped[(c * outputs + o) * kk + (kk - 1 - i)] = w[(o * channels + c) * kk + i];
}
