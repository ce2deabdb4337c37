// Elementwise activations: branch-free scalar bodies that clang vectorizes in each target clone.
#include "activations.h"
#include "clones.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/// erfc(z) for z ≥ 0 (Numerical Recipes' erfcc, a Chebyshev fit with fractional error < 1.2e-7
/// everywhere): no cancellation in the tail, where Φ(x) for negative x lives.
static inline float erfc_nonnegative(float z) {
    const float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * exp_clamped(p - z * z);
}

/// Φ(x) = erfc(−x/√2) / 2.
static inline float normal_cdf(float x) {
    const float tail = 0.5f * erfc_nonnegative(fabsf(x) * 0.70710678118654752f);
    return x < 0 ? tail : 1.0f - tail;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_clamped(-x)); }

/// tanh: Cephes' odd polynomial below 0.625 (no cancellation near 0), else 1 − 2/(e^{2|x|} + 1).
static inline float tanh_approx(float x) {
    const float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * x + x;
    const float large = copysignf(1.0f - 2.0f / (exp_clamped(2.0f * a) + 1.0f), x);
    return a < 0.625f ? small : large;
}

/// √(2/π) and GPT-2's cubic coefficient.
static const float gelu_tanh_scale = 0.79788456080286536f, gelu_tanh_cubic = 0.044715f;

/// x/2·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³), written as x·σ(2u) (the same function, since
/// 1 + tanh(u) = 2σ(2u)): no cancellation in 1 + tanh(u) for negative x, where the value is small.
static inline float gelu_tanh(float x) {
    return x * sigmoid(2.0f * gelu_tanh_scale * (x + gelu_tanh_cubic * x * x * x));
}

/// d/dx of x·σ(2u): σ + x·σ·(1 − σ)·2u′, u′ = √(2/π)·(1 + 3·0.044715·x²). Beyond |x| = 10, σ is 0 or 1 in
/// float and the exact derivative rounds to 0 or 1 (the product form would overflow in x³ first).
static inline float gelu_tanh_derivative(float x) {
    const float s = sigmoid(2.0f * gelu_tanh_scale * (x + gelu_tanh_cubic * x * x * x));
    const float inner_derivative = 2.0f * gelu_tanh_scale * (1.0f + 3.0f * gelu_tanh_cubic * x * x);
    const float derivative = s + x * s * (1.0f - s) * inner_derivative;
    return fabsf(x) > 10.0f ? (x > 0 ? 1.0f : 0.0f) : derivative;
}

DISTRAIN_CLONES
void distrain_pointwise_forward(int function, float slope, const float *x, float *y, size_t count) {
    switch (function) {
    case DISTRAIN_LEAKY_RELU:
        for (size_t i = 0; i < count; i++) y[i] = x[i] >= 0 ? x[i] : slope * x[i];
        return;
    case DISTRAIN_GELU:
        for (size_t i = 0; i < count; i++) y[i] = x[i] != x[i] ? x[i] : x[i] * normal_cdf(x[i]);
        return;
    case DISTRAIN_SILU:
        for (size_t i = 0; i < count; i++) y[i] = x[i] != x[i] ? x[i] : x[i] * sigmoid(x[i]);
        return;
    case DISTRAIN_TANH:
        for (size_t i = 0; i < count; i++) y[i] = x[i] != x[i] ? x[i] : tanh_approx(x[i]);
        return;
    case DISTRAIN_GELU_TANH:
        for (size_t i = 0; i < count; i++) y[i] = x[i] != x[i] ? x[i] : gelu_tanh(x[i]);
        return;
    default:
        for (size_t i = 0; i < count; i++) y[i] = x[i] != x[i] ? x[i] : sigmoid(x[i]);
        return;
    }
}

DISTRAIN_CLONES
void distrain_pointwise_backward(int function, float slope, const float *x, const float *y, const float *dy, float *dx,
                                 size_t count) {
    switch (function) {
    case DISTRAIN_LEAKY_RELU:
        for (size_t i = 0; i < count; i++) dx[i] = dy[i] * (x[i] >= 0 ? 1.0f : slope);
        return;
    case DISTRAIN_GELU:  // Φ(x) + x·φ(x)
        for (size_t i = 0; i < count; i++) {
            const float pdf = 0.39894228040143268f * exp_clamped(-0.5f * x[i] * x[i]);
            dx[i] = x[i] != x[i] ? x[i] : dy[i] * (normal_cdf(x[i]) + x[i] * pdf);
        }
        return;
    case DISTRAIN_SILU:  // σ(x)·(1 + x·(1 − σ(x)))
        for (size_t i = 0; i < count; i++) {
            const float s = sigmoid(x[i]);
            dx[i] = x[i] != x[i] ? x[i] : dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
        }
        return;
    case DISTRAIN_TANH:
        for (size_t i = 0; i < count; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        return;
    case DISTRAIN_GELU_TANH:
        for (size_t i = 0; i < count; i++) dx[i] = x[i] != x[i] ? x[i] : dy[i] * gelu_tanh_derivative(x[i]);
        return;
    default:
        for (size_t i = 0; i < count; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
        return;
    }
}
