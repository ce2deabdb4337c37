#ifndef DISTRAIN_POOLING_H
#define DISTRAIN_POOLING_H
#include <stddef.h>

/// 2x2 stride-2 max pooling of `planes` planes (H, W) into (H/2, W/2) (floor, as torch.nn.MaxPool2d(2)).
/// winners[i] is the sample-relative flat input offset of output i's first maximum: plane p adds
/// (p % channels)*H*W, so backward can scatter within the sample. A NaN wins (`!(v <= best)`) as in PyTorch.
void distrain_maxpool2x2(const float *restrict x, float *restrict y, int *restrict winners, size_t planes,
                         size_t channels, size_t height, size_t width);

/// The 2x2 stride-2 backward over `planes` planes: every dx position is written (dy at each window's
/// winner, 0 elsewhere, 0 in an odd last row or column), so dx needs no zeroing first. Windows do not
/// overlap, so each position receives at most one gradient.
void distrain_maxpool2x2_backward(const float *restrict dy, const int *restrict winners, float *restrict dx,
                                  size_t planes, size_t channels, size_t height, size_t width);

/// dx[winners[i]] += dy[i] for one sample's `count` outputs (dx zeroed by the caller).
void distrain_maxpool_backward(const float *restrict dy, const int *restrict winners, float *restrict dx, size_t count);

/// 2x2 stride-2 average pooling of `planes` planes (H, W) into (H/2, W/2), as torch.nn.AvgPool2d(2):
/// each output is ((top-left + top-right) + bottom-left + bottom-right) · 0.25, the order of the general loop.
void distrain_avgpool2x2(const float *restrict x, float *restrict y, size_t planes, size_t height, size_t width);

/// Its backward: every dx position is written (a quarter of its window's dy, 0 in an odd last row or
/// column), so dx needs no zeroing first.
void distrain_avgpool2x2_backward(const float *restrict dy, float *restrict dx, size_t planes, size_t height, size_t width);

#endif
