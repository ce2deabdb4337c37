// Elementwise activations of model specs (Layers/PointwiseActivations.swift), with PyTorch's formulas:
// vectorized approximations of exp and the normal CDF, accurate to a few float ulps, instead of a libm
// call per element (which made a GELU network 1.8× slower per step than the same network with ReLU).
#ifndef DISTRAIN_ACTIVATIONS_H
#define DISTRAIN_ACTIVATIONS_H
#include <stddef.h>

/// The functions, as PyTorch names them. The numbers are part of the C interface.
enum DistrainPointwise {
    DISTRAIN_LEAKY_RELU = 0,  // x ≥ 0 ? x : slope·x
    DISTRAIN_GELU = 1,        // x·Φ(x), Φ the exact normal CDF (approximate='none')
    DISTRAIN_SILU = 2,        // x·σ(x)
    DISTRAIN_TANH = 3,
    DISTRAIN_SIGMOID = 4,     // σ(x) = 1 / (1 + e^−x)
    DISTRAIN_GELU_TANH = 5,   // x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (approximate='tanh', GPT-2's)
};

/// y[i] = f(x[i]) for i < count; a NaN input gives a NaN output. y may be x.
void distrain_pointwise_forward(int function, float slope, const float *x, float *y, size_t count);

/// dx[i] = dy[i] · f′(x[i]), given the forward's input x and output y. dx may be dy.
void distrain_pointwise_backward(int function, float slope, const float *x, const float *y, const float *dy, float *dx,
                                 size_t count);

#endif
