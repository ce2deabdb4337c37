// Max pooling kernels for the common 2x2, stride-2 window (other windows use the general Swift loop).
#include "pooling.h"
#include "clones.h"
#include <string.h>

/// PyTorch's max-pool update rule: a value replaces the best so far when larger, or when it is a NaN
/// (so a NaN anywhere in a window wins). Written with selects, not branches: the data decide at random.
/// a where mask lanes are set (-1), else b. (A macro: a helper function taking vectors would change
/// its ABI between the clones.)
#define SELECT8(mask, a, b) ((v8)(((mask) & (v8i)(a)) | (~(mask) & (v8i)(b))))

#define TAKE_IF_BETTER(value, at)                                  \
    do {                                                           \
        const float v_ = (value);                                  \
        const int better_ = (v_ > best) | (v_ != v_);              \
        best = better_ ? v_ : best;                                \
        index = better_ ? (at) : index;                            \
    } while (0)

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));
typedef int v8i __attribute__((vector_size(32)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int v8iu __attribute__((vector_size(32), aligned(4)));

/// One output's window in PyTorch's scan order (top-left, top-right, bottom-left, bottom-right).
static inline void pool_window(const float *top, const float *bottom, size_t ox, int left, int width,
                               float *out, int *winner) {
    float best = top[2 * ox];
    int index = left;
    TAKE_IF_BETTER(top[2 * ox + 1], left + 1);
    TAKE_IF_BETTER(bottom[2 * ox], left + width);
    TAKE_IF_BETTER(bottom[2 * ox + 1], left + width + 1);
    *out = best;
    *winner = index;
}

DISTRAIN_CLONES
void distrain_maxpool2x2(const float *restrict x, float *restrict y, int *restrict winners, size_t planes,
                         size_t channels, size_t height, size_t width) {
    const size_t out_h = height / 2, out_w = width / 2, plane_in = height * width, plane_out = out_h * out_w;
    const float *x_end = x + planes * plane_in;
    const int w = (int)width;
    const v8i lane = {0, 2, 4, 6, 8, 10, 12, 14};
    const v8i offsets[4] = {{0}, {1, 1, 1, 1, 1, 1, 1, 1}, {w, w, w, w, w, w, w, w},
                            {w + 1, w + 1, w + 1, w + 1, w + 1, w + 1, w + 1, w + 1}};
    for (size_t p = 0; p < planes; p++) {
        const float *src = x + p * plane_in;
        float *dst = y + p * plane_out;
        int *win = winners + p * plane_out;
        const int sample_offset = (int)((p % channels) * plane_in);
        for (size_t oy = 0; oy < out_h; oy++) {
            const float *top = src + 2 * oy * width, *bottom = top + width;
            const int row = sample_offset + (int)(2 * oy * width);
            for (size_t ox = 0; ox < out_w; ox += 8) {
                const size_t lanes = out_w - ox < 8 ? out_w - ox : 8;
                if (bottom + 2 * ox + 16 > x_end) {  // the 16-float loads would leave the buffer
                    for (size_t l = 0; l < lanes; l++)
                        pool_window(top, bottom, ox + l, row + 2 * (int)(ox + l), w, dst + oy * out_w + ox + l,
                                    win + oy * out_w + ox + l);
                    continue;
                }
                // Eight windows at once: the even and odd columns of 16 floats of each row. A short last
                // chunk reads on into the next row (inside the buffer) and stores only its valid lanes.
                const v16 t = *(const v16u *)(top + 2 * ox), b = *(const v16u *)(bottom + 2 * ox);
                const v8 candidates[4] = {
                    __builtin_shufflevector(t, t, 0, 2, 4, 6, 8, 10, 12, 14),
                    __builtin_shufflevector(t, t, 1, 3, 5, 7, 9, 11, 13, 15),
                    __builtin_shufflevector(b, b, 0, 2, 4, 6, 8, 10, 12, 14),
                    __builtin_shufflevector(b, b, 1, 3, 5, 7, 9, 11, 13, 15),
                };
                v8 best = candidates[0];
                v8i offset = offsets[0];
                for (int c = 1; c < 4; c++) {
                    const v8i better = (candidates[c] > best) | (candidates[c] != candidates[c]);
                    best = SELECT8(better, candidates[c], best);
                    offset = (better & offsets[c]) | (~better & offset);
                }
                const v8i index = row + 2 * (int)ox + lane + offset;
                if (lanes == 8) {
                    *(v8u *)(dst + oy * out_w + ox) = best;
                    *(v8iu *)(win + oy * out_w + ox) = index;
                } else {
                    for (size_t l = 0; l < lanes; l++) {
                        dst[oy * out_w + ox + l] = best[l];
                        win[oy * out_w + ox + l] = index[l];
                    }
                }
            }
        }
    }
}

void distrain_maxpool2x2_backward(const float *restrict dy, const int *restrict winners, float *restrict dx,
                                  size_t planes, size_t channels, size_t height, size_t width) {
    const size_t out_h = height / 2, out_w = width / 2, plane_in = height * width, plane_out = out_h * out_w;
    for (size_t p = 0; p < planes; p++) {
        const float *d = dy + p * plane_out;
        const int *win = winners + p * plane_out;
        // Winners are sample-relative; rebase them to this plane.
        float *out = dx + p * plane_in - (p % channels) * plane_in;
        // Zeroing one plane right before scattering into it keeps the plane in L1 (a batch-wide zeroing
        // pass first would go out to memory and back).
        memset(dx + p * plane_in, 0, plane_in * sizeof(float));
        for (size_t i = 0; i < plane_out; i++) out[win[i]] = d[i];
    }
}

void distrain_maxpool_backward(const float *restrict dy, const int *restrict winners, float *restrict dx, size_t count) {
    for (size_t i = 0; i < count; i++) dx[winners[i]] += dy[i];
}

DISTRAIN_CLONES
void distrain_avgpool2x2(const float *restrict x, float *restrict y, size_t planes, size_t height, size_t width) {
    const size_t out_h = height / 2, out_w = width / 2;
    for (size_t p = 0; p < planes; p++) {
        for (size_t oy = 0; oy < out_h; oy++) {
            const float *top = x + p * height * width + 2 * oy * width, *bottom = top + width;
            float *out = y + (p * out_h + oy) * out_w;
            for (size_t ox = 0; ox < out_w; ox++)
                out[ox] = (((top[2 * ox] + top[2 * ox + 1]) + bottom[2 * ox]) + bottom[2 * ox + 1]) * 0.25f;
        }
    }
}

DISTRAIN_CLONES
void distrain_avgpool2x2_backward(const float *restrict dy, float *restrict dx, size_t planes, size_t height, size_t width) {
    const size_t out_h = height / 2, out_w = width / 2;
    for (size_t p = 0; p < planes; p++) {
        float *plane = dx + p * height * width;
        for (size_t oy = 0; oy < out_h; oy++) {
            const float *d = dy + (p * out_h + oy) * out_w;
            float *top = plane + 2 * oy * width, *bottom = top + width;
            for (size_t ox = 0; ox < out_w; ox++) {
                const float share = d[ox] * 0.25f;
                top[2 * ox] = share;
                top[2 * ox + 1] = share;
                bottom[2 * ox] = share;
                bottom[2 * ox + 1] = share;
            }
            if (width % 2) top[width - 1] = bottom[width - 1] = 0;
        }
        if (height % 2) memset(plane + (height - 1) * width, 0, width * sizeof(float));
    }
}
