// Max pooling kernels for the common 2x2, stride-2 window (other windows use the general Swift loop).
#include "pooling.h"

void distrain_maxpool2x2(const float *restrict x, float *restrict y, int *restrict winners, size_t planes,
                         size_t channels, size_t height, size_t width) {
    const size_t out_h = height / 2, out_w = width / 2, plane_in = height * width, plane_out = out_h * out_w;
    for (size_t p = 0; p < planes; p++) {
        const float *src = x + p * plane_in;
        float *dst = y + p * plane_out;
        int *win = winners + p * plane_out;
        const int sample_offset = (int)((p % channels) * plane_in);
        for (size_t oy = 0; oy < out_h; oy++) {
            const float *top = src + 2 * oy * width, *bottom = top + width;
            for (size_t ox = 0; ox < out_w; ox++) {
                // Candidates in PyTorch's scan order; `!(v <= best)` lets a NaN win and keeps the first maximum.
                size_t index = 2 * oy * width + 2 * ox;
                float best = top[2 * ox];
                if (!(top[2 * ox + 1] <= best)) { best = top[2 * ox + 1]; index = 2 * oy * width + 2 * ox + 1; }
                if (!(bottom[2 * ox] <= best)) { best = bottom[2 * ox]; index = (2 * oy + 1) * width + 2 * ox; }
                if (!(bottom[2 * ox + 1] <= best)) { best = bottom[2 * ox + 1]; index = (2 * oy + 1) * width + 2 * ox + 1; }
                dst[oy * out_w + ox] = best;
                win[oy * out_w + ox] = sample_offset + (int)index;
            }
        }
    }
}

void distrain_maxpool_backward(const float *restrict dy, const int *restrict winners, float *restrict dx, size_t count) {
    for (size_t i = 0; i < count; i++) dx[winners[i]] += dy[i];
}
