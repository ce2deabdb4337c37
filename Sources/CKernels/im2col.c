// See im2col.h. The loops run over whole output rows: for stride 1 a row of one column-matrix row is a
// contiguous run of an input row, so the copy (im2col) and the add (col2im) vectorize; the Swift loops
// they replace did not (col2im alone was 10% of the CNN's step).
#include "im2col.h"
#include "quantized.h"
#include <string.h>
#include "clones.h"

typedef struct { ptrdiff_t first, end; } span;

/// Output positions o in [first, end) with 0 <= o*stride + offset < limit, clipped to [0, count).
static inline span valid_span(ptrdiff_t offset, ptrdiff_t stride, ptrdiff_t limit, ptrdiff_t count) {
    ptrdiff_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    ptrdiff_t end = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
    if (first > count) first = count;
    if (end < first) end = first;
    if (end > count) end = count;
    return (span){first, end};
}

// One body for float inputs and uint8 codes (quantized inference); `pad` fills the positions in the padding.
// ROW_COPY(dst, src, n) copies a contiguous run (stride 1): a loop for floats, memcpy for bytes — the rows are
// 7 to 28 bytes, where the vectorized byte loop spent its time in remainder handling (32% of an int8 CNN
// forward pass at batch 1) and memcpy's overlapping moves do not.
#define DISTRAIN_IM2COL_BODY(type, pad, ROW_COPY)                                                                          \
    const ptrdiff_t h = (ptrdiff_t)height, w = (ptrdiff_t)width, s = (ptrdiff_t)stride, p = (ptrdiff_t)padding;   \
    const ptrdiff_t out_h = (h + 2 * p - (ptrdiff_t)kernel_height) / s + 1;                                      \
    const ptrdiff_t out_w = (w + 2 * p - (ptrdiff_t)kernel_width) / s + 1;                                       \
    const size_t pixels = (size_t)(out_h * out_w), row_length = batch * pixels;                                  \
    type *row = columns;                                                                                          \
    for (size_t c = 0; c < channels; c++) {                                                                      \
        for (ptrdiff_t ki = 0; ki < (ptrdiff_t)kernel_height; ki++) {                                            \
            for (ptrdiff_t kj = 0; kj < (ptrdiff_t)kernel_width; kj++, row += row_length) {                      \
                const span cols = valid_span(kj - p, s, w, out_w);                                               \
                for (size_t b = 0; b < batch; b++) {                                                             \
                    const type *plane = x + (b * channels + c) * height * width;                                 \
                    type *out = row + b * pixels;                                                                 \
                    for (ptrdiff_t oy = 0; oy < out_h; oy++) {                                                   \
                        const ptrdiff_t iy = oy * s - p + ki;                                                    \
                        type *dst = out + oy * out_w;                                                             \
                        if (iy < 0 || iy >= h) {                                                                 \
                            for (ptrdiff_t ox = 0; ox < out_w; ox++) dst[ox] = (pad);                            \
                            continue;                                                                            \
                        }                                                                                        \
                        const type *src = plane + iy * w - p + kj; /* src[ox*s]: input column ox*s - p + kj */   \
                        for (ptrdiff_t ox = 0; ox < cols.first; ox++) dst[ox] = (pad);                           \
                        if (s == 1) {                                                                            \
                            ROW_COPY(dst + cols.first, src + cols.first, cols.end - cols.first);                 \
                        } else {                                                                                 \
                            for (ptrdiff_t ox = cols.first; ox < cols.end; ox++) dst[ox] = src[ox * s];          \
                        }                                                                                        \
                        for (ptrdiff_t ox = cols.end; ox < out_w; ox++) dst[ox] = (pad);                         \
                    }                                                                                            \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
    }

DISTRAIN_CLONES
void distrain_im2col(const float *restrict x, size_t batch, size_t channels, size_t height, size_t width,
                     size_t kernel_height, size_t kernel_width, size_t stride, size_t padding,
                     float *restrict columns) {
#define FLOAT_ROW_COPY(dst, src, n) for (ptrdiff_t i = 0; i < (n); i++) (dst)[i] = (src)[i]
    DISTRAIN_IM2COL_BODY(float, 0.0f, FLOAT_ROW_COPY)
}

DISTRAIN_CLONES
void distrain_im2col_u8(const uint8_t *restrict x, size_t batch, size_t channels, size_t height, size_t width,
                        size_t kernel_height, size_t kernel_width, size_t stride, size_t padding,
                        uint8_t padding_code, uint8_t *restrict columns) {
#define BYTE_ROW_COPY(dst, src, n) if ((n) > 0) memcpy((dst), (src), (size_t)(n))
    DISTRAIN_IM2COL_BODY(uint8_t, padding_code, BYTE_ROW_COPY)
}

DISTRAIN_CLONES
void distrain_col2im_accumulate(const float *restrict columns, size_t batch, size_t channels, size_t height,
                                size_t width, size_t kernel_height, size_t kernel_width, size_t stride,
                                size_t padding, float *restrict dx) {
    const ptrdiff_t h = (ptrdiff_t)height, w = (ptrdiff_t)width, s = (ptrdiff_t)stride, p = (ptrdiff_t)padding;
    const ptrdiff_t out_h = (h + 2 * p - (ptrdiff_t)kernel_height) / s + 1;
    const ptrdiff_t out_w = (w + 2 * p - (ptrdiff_t)kernel_width) / s + 1;
    const size_t pixels = (size_t)(out_h * out_w), row_length = batch * pixels;
    const float *row = columns;
    for (size_t c = 0; c < channels; c++) {
        for (ptrdiff_t ki = 0; ki < (ptrdiff_t)kernel_height; ki++) {
            for (ptrdiff_t kj = 0; kj < (ptrdiff_t)kernel_width; kj++, row += row_length) {
                const span cols = valid_span(kj - p, s, w, out_w);
                if (cols.end <= cols.first) continue;
                for (size_t b = 0; b < batch; b++) {
                    float *plane = dx + (b * channels + c) * height * width;
                    const float *source = row + b * pixels;
                    for (ptrdiff_t oy = 0; oy < out_h; oy++) {
                        const ptrdiff_t iy = oy * s - p + ki;
                        if (iy < 0 || iy >= h) continue;
                        const float *src = source + oy * out_w;
                        float *dst = plane + iy * w - p + kj;
                        if (s == 1) {
                            for (ptrdiff_t ox = cols.first; ox < cols.end; ox++) dst[ox] += src[ox];
                        } else {
                            for (ptrdiff_t ox = cols.first; ox < cols.end; ox++) dst[ox * s] += src[ox];
                        }
                    }
                }
            }
        }
    }
}
