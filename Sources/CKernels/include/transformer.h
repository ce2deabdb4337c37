// The elementwise and row-wise parts of a transformer layer (Layers/LayerNorm.swift,
// Layers/CausalSelfAttention.swift): vectorized in each target clone, so that what is not a GEMM costs little
// beside the GEMMs (in Swift, with Double sums, LayerNorm and the softmax took 12% of a gpt-mini step).
#ifndef DISTRAIN_TRANSFORMER_H
#define DISTRAIN_TRANSFORMER_H
#include <stddef.h>

/// LayerNorm over rows of c features: y = (x − mean)·rstd·weight + bias, rstd = 1/√(variance + eps) with the
/// biased variance. x, y: (rows, c); weight: (c); bias: (c) or NULL; means, rstds: (rows), kept for backward.
void distrain_layer_norm_forward(const float *x, const float *weight, const float *bias, float *y, float *means,
                                 float *rstds, size_t rows, size_t c, float eps);

/// LayerNorm's backward: dweight += Σ dy·x̂, dbias += Σ dy (when not NULL), and, when dx is not NULL,
/// dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·weight. Rows are visited in order, so the
/// parameter gradients are summed in one fixed order.
void distrain_layer_norm_backward(const float *x, const float *weight, const float *means, const float *rstds,
                                  const float *dy, float *dx, float *dweight, float *dbias, size_t rows, size_t c);

/// Row i of the (t, t) scores becomes softmax over columns 0…i; the columns after i become 0.
void distrain_causal_softmax(float *scores, size_t t);

/// Rows of new positions offset, offset+1, … of one sequence against its columns positions 0…: row i becomes
/// softmax over columns 0…offset+i, the columns after it 0 (generation: the new positions see the cached ones).
void distrain_causal_softmax_rows(float *scores, size_t rows, size_t columns, size_t offset);

/// The softmax's backward on (t, t) rows: dscores = P ⊙ (dP − Σⱼ P·dP)·scale on and below the diagonal, 0 above.
/// dscores holds dP on entry.
void distrain_causal_softmax_backward(const float *probabilities, float *dscores, size_t t, float scale);

#endif
