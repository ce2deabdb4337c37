// The arithmetic of the shared-memory gradient sum (Collectives' SharedMemorySumArena): each rank of a
// host sums one slice of every rank's arena and writes the result back into all of them.
#ifndef DISTRAIN_REDUCTION_H
#define DISTRAIN_REDUCTION_H
#include <stddef.h>

/// For i in [begin, end): v = sources[0][i] + sources[1][i] + … (in that order), written to
/// targets[t][i] for every t. Targets may be sources (each element is read before any is written).
/// The fixed order gives every rank that passes the same sources the same bits.
/// Returns 1 when every v is finite, else 0.
int distrain_sum_spread(const float *const *sources, size_t source_count, float *const *targets,
                        size_t target_count, size_t begin, size_t end);

/// Σ x[i]² for the global gradient norm: 16 float lanes within blocks of 4096, each block's sum added in
/// Double, in one fixed order (the same bits on every rank holding the same gradients).
double distrain_sum_of_squares(const float *x, size_t n);

/// x[i] *= factor.
void distrain_scale(float *x, size_t n, float factor);

#endif
