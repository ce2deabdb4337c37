// See quantized.h.
#include "quantized.h"
#include <math.h>
#include "clones.h"

DISTRAIN_CLONES
void distrain_quantize_u8(const float *restrict x, uint8_t *restrict q, size_t count, float inverse_scale,
                          int32_t zero_point, int32_t max_code) {
    const float low = (float)-zero_point, high = (float)(max_code - zero_point);
    for (size_t i = 0; i < count; i++) {
        // Clamp in float first, so out-of-range and huge values never overflow the integer conversion;
        // nearbyintf rounds half to even, as torch.quantize_per_tensor does.
        float v = nearbyintf(x[i] * inverse_scale);
        v = v < low ? low : (v > high ? high : v);
        q[i] = (uint8_t)((int32_t)v + zero_point);
    }
}

// distrain_im2col_u8 shares distrain_im2col's body, in im2col.c.

DISTRAIN_CLONES
void distrain_dequantize_rows(const int32_t *restrict acc, float *restrict y, size_t rows, size_t columns,
                              const int32_t *restrict correction, const float *restrict scale,
                              const float *restrict bias, int relu) {
    for (size_t r = 0; r < rows; r++) {
        const int32_t *a = acc + r * columns;
        float *out = y + r * columns;
        for (size_t c = 0; c < columns; c++) {
            float v = (float)(a[c] - correction[c]) * scale[c] + bias[c];
            out[c] = relu && v < 0 ? 0 : v;
        }
    }
}

// acc is read in tiles of 16 pixels: a tile's int32 rows (16 × channels, ≤ 8 KB) stay in L1 while each
// channel's 16 outputs are written contiguously. Reading acc channel by channel across all pixels instead
// strode through it in L2, and staging a tile in a float buffer stalled every read on store forwarding
// (the buffer was written by wide stores and read back by scalar loads): both measured slower.
DISTRAIN_CLONES
void distrain_dequantize_to_planes(const int32_t *restrict acc, float *restrict y, size_t images, size_t pixels,
                                   size_t channels, const int32_t *restrict correction, const float *restrict scale,
                                   const float *restrict bias, int relu) {
    enum { tile = 16 };
    const float floor_value = relu ? 0.0f : -INFINITY;
    for (size_t b = 0; b < images; b++) {
        const int32_t *image = acc + b * pixels * channels;
        float *planes = y + b * channels * pixels;
        for (size_t p0 = 0; p0 < pixels; p0 += tile) {
            const size_t np = pixels - p0 < tile ? pixels - p0 : tile;
            const int32_t *rows = image + p0 * channels;
            for (size_t o = 0; o < channels; o++) {
                float *out = planes + o * pixels + p0;
                const float s = scale[o], offset = bias[o];
                const int32_t z = correction[o];
                // Scalar on purpose: vectorized, the strided reads become gathers (measured slower).
#pragma clang loop vectorize(disable)
                for (size_t p = 0; p < np; p++) {
                    const float v = (float)(rows[p * channels + o] - z) * s + offset;
                    out[p] = v > floor_value ? v : floor_value;
                }
            }
        }
    }
}
